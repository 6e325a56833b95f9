"""What the demo's sales contacts say: one short storyline per scenario (a viewing, a
price question, a car-park question, signing, handover, an owner's complaint), so that a
customer's timeline reads like real work. Data, not UI: Chinese only, not translated.

Each story is the contact summaries in the order they happened (a customer gets the
first one to four of them), the follow-up its salesperson set next, and the note on the
customer's card.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ContactStory:
    contacts: tuple[str, ...]
    followup: str
    note: str


STORIES = [
    ContactStory(
        (
            "客户电话咨询 3 期 89㎡ 三房，约周六上午到售楼处看样板间",
            "客户与爱人到访看了 89㎡ 和 105㎡ 样板间，更喜欢 105㎡ 南北通透的户型",
            "带客户看了 6 栋 1203 现房，对楼层满意，担心西晒",
            "微信发送 6 栋和 8 栋的日照分析，客户说周末再来一次",
        ),
        "邀请客户周末再次到访，带看 8 栋东边户",
        "夫妻二人，孩子明年上小学，关注学区",
    ),
    ContactStory(
        (
            "客户询问 105㎡ 单价和首付比例，已报 2.35 万/㎡，首付三成",
            "客户对比了隔壁楼盘，认为总价高 8 万，要求申请折扣",
            "已申请特批 98 折并赠送两年物业费，客户表示回去商量",
            "客户同意按特批价认购，约周三带首付款到售楼处",
        ),
        "周三前发送认购书草稿和付款明细",
        "价格敏感，比较了三个楼盘",
    ),
    ContactStory(
        (
            "客户询问地下车位是否可以单独购买，价格多少",
            "已发送 B1、B2 车位平面图和价目表，B1 靠近电梯口的 18 万",
            "客户实地看了 B1-088 和 B1-092，担心车位太窄不好停",
            "客户决定买 B1-092，要求和房子一起办按揭",
        ),
        "确认车位能否与房屋一起办理按揭",
        "两台车，需要一个产权车位加一个月租车位",
    ),
    ContactStory(
        (
            "客户确认签约时间为本周五下午，需要准备首付款证明",
            "提醒客户带齐身份证、户口本、婚姻证明和银行流水",
            "客户完成网签，贷款资料已交银行",
            "银行批贷通知已到，已短信告知客户",
        ),
        "回访客户放款进度，确认交房通知书寄送地址",
        "首套房，公积金组合贷",
    ),
    ContactStory(
        (
            "电话通知客户下月集中交房，发送入伙须知",
            "客户预约了周六上午 9:30 的交房时段",
            "现场验房，客户提出次卧墙面空鼓和阳台地漏反坡两处整改",
            "整改完成后陪同客户复验，客户签收钥匙",
        ),
        "交房一个月后回访入住情况",
        "对交付质量比较在意，验房带了第三方验房师",
    ),
    ContactStory(
        (
            "老业主来电反映车位被外来车辆占用，已转服务台处理",
            "回访业主，物业已加装地锁，业主表示满意",
            "业主推荐同事看 3 期的房子，已登记为新线索",
        ),
        "联系业主推荐的同事，邀请到访",
        "老业主，已推荐两位朋友购房",
    ),
    ContactStory(
        (
            "经销商反馈本月智能门锁出货量下降，希望加大促销支持",
            "会议讨论年度采购框架协议，对方要求账期从 30 天延长到 60 天",
            "邮件发送了合同草稿，等待对方法务意见",
        ),
        "催对方法务确认合同修改意见",
        "年底有集中采购计划，决策人是采购总监",
    ),
    ContactStory(
        (
            "客户暂时没有购房计划，明年孩子毕业后再考虑",
            "短信邀请客户参加周末业主开放日",
        ),
        "半年后回访购房计划",
        "周末方便联系，工作日不接电话",
    ),
]
