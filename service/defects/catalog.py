"""The default defect category tree (trade → part → symptom, with each symptom's
default severity), as plain data: the data migration and `services.categories_ensure_
default` both read it, so a fresh database and the demo get the same tree.

Admins edit the tree afterwards in the settings area (/settings/defects/)."""

from __future__ import annotations

# (trade, [(part, [(symptom, default severity), ...]), ...])
DEFAULT_TREE: list[tuple[str, list[tuple[str, list[tuple[str, str]]]]]] = [
    (
        "土建",
        [
            ("墙面", [("空鼓", "P2"), ("开裂", "P1"), ("不平整", "P2")]),
            ("地面", [("空鼓", "P2"), ("开裂", "P1"), ("起砂", "P2")]),
            ("顶棚", [("渗水", "P1"), ("开裂", "P2")]),
        ],
    ),
    (
        "门窗",
        [
            ("入户门", [("无法开启/锁具故障", "P0"), ("划痕", "P2")]),
            ("窗户", [("渗水", "P1"), ("密封不严", "P2"), ("玻璃破损", "P0")]),
            ("室内门", [("变形", "P2"), ("五金松动", "P2")]),
        ],
    ),
    (
        "水电",
        [
            ("给水", [("漏水", "P0"), ("水压不足", "P2")]),
            ("排水", [("堵塞", "P1"), ("反味", "P2")]),
            ("电气", [("漏电/跳闸", "P0"), ("插座无电", "P1"), ("面板松动", "P2")]),
        ],
    ),
    (
        "防水",
        [
            ("卫生间", [("渗漏", "P0"), ("闭水不合格", "P1")]),
            ("阳台", [("渗漏", "P1")]),
            ("外墙", [("渗水", "P1")]),
        ],
    ),
    (
        "涂料",
        [
            ("墙面涂料", [("污染", "P2"), ("起皮脱落", "P2"), ("色差", "P2")]),
        ],
    ),
    (
        "安装",
        [
            ("厨卫设备", [("损坏", "P1"), ("安装不牢", "P2")]),
            ("燃气", [("漏气", "P0")]),
        ],
    ),
]


def ensure(category_model: type) -> int:
    """Create the missing nodes of the default tree (existing ones, edited or not, are
    kept); returns how many were created. Works with the migration's historical model."""
    created = 0
    for position, (trade, parts) in enumerate(DEFAULT_TREE):
        root, made = category_model.objects.get_or_create(
            parent=None, name=trade, defaults={"level": 1, "position": position}
        )
        created += made
        for part_position, (part, symptoms) in enumerate(parts):
            node, made = category_model.objects.get_or_create(
                parent=root, name=part, defaults={"level": 2, "position": part_position}
            )
            created += made
            for leaf_position, (symptom, severity) in enumerate(symptoms):
                _leaf, made = category_model.objects.get_or_create(
                    parent=node,
                    name=symptom,
                    defaults={
                        "level": 3,
                        "position": leaf_position,
                        "default_severity": severity,
                    },
                )
                created += made
    return created
