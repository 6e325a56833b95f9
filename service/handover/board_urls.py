from __future__ import annotations

from django.urls import path

from service.handover import board_views

# Included by service/handover/urls.py (namespace "handover").
urlpatterns = [
    path("board/", board_views.board_current, name="board_current"),
    path("events/<int:pk>/board/", board_views.event_board, name="event_board"),
    path(
        "events/<int:pk>/board/live/",
        board_views.event_board_live,
        name="event_board_live",
    ),
    path(
        "events/<int:pk>/board/grid/",
        board_views.event_board_grid,
        name="event_board_grid",
    ),
]
