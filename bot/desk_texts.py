"""What a desk's routes tell their owners when the route is held or its shared watch removed.

Kept beside bot/texts.py (whose `desk_label` it uses) while that file had other work in
flight; the same vocabulary, to be folded into it.
"""

from __future__ import annotations

from html import escape

from bot.texts import desk_label

ROUTE_HELD_STATE = {
    "left": " · ⏸ paused (its owner left the group)",
    "revoked": " · ⏸ paused (its owner's access was revoked)",
}


def held_state(held: str) -> str:
    """The /routes line's ending for a route held for its owner ("" if it is not)."""
    return ROUTE_HELD_STATE.get(held, " · ⏸ paused") if held else ""


def route_held(title: str, sources: list[str], why: str) -> str:
    """To the owner of routes paused because of them (they left the group, or lost access)."""
    names = ", ".join(escape(s) for s in sources)
    if why == "left":
        return (
            f"⏸ You are no longer a member of <b>{escape(title)}</b>, so your watches' routes "
            f"there are paused: {names}. They resume if you join again; /routes lists them."
        )
    return (
        f"⏸ Your access was revoked, so your routes to <b>{escape(title)}</b> are paused: {names}."
    )


def desk_shared_removed(shared_id: int, name: str, title: str, chat_id: int) -> str:
    """To whoever routed a shared watch to a desk, when the shared watch is removed."""
    label = f" {escape(name)}" if name else ""
    return (
        f"🗑 The admins removed the shared watch <b>S{shared_id}</b>{label}, so it no longer "
        f"goes to <b>{desk_label(title, chat_id)}</b> (<code>{chat_id}</code>)."
    )
