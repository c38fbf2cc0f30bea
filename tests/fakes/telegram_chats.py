"""Chats and their members: getChat, getChatMember, sendChatAction."""

from __future__ import annotations

from typing import Any

from tests.fakes.telegram_messages import MessageStore, chat_id_of
from tests.fakes.telegram_rules import bad_request

_CHAT_ACTIONS = frozenset(
    {
        "typing",
        "upload_photo",
        "record_video",
        "upload_video",
        "record_voice",
        "upload_voice",
        "upload_document",
        "choose_sticker",
        "find_location",
        "record_video_note",
        "upload_video_note",
    }
)
# ChatMemberAdministrator's required fields (python-telegram-bot 22 refuses it without them).
_ADMIN_RIGHTS = dict.fromkeys(
    (
        "can_manage_chat",
        "can_delete_messages",
        "can_manage_video_chats",
        "can_restrict_members",
        "can_change_info",
        "can_invite_users",
        "can_post_stories",
        "can_edit_stories",
        "can_delete_stories",
    ),
    True,
) | {"can_be_edited": False, "is_anonymous": False, "can_promote_members": False}
_GIFTS = ("unlimited_gifts", "limited_gifts", "unique_gifts", "premium_subscription")


class ChatMembers:
    def __init__(self, store: MessageStore) -> None:
        self._store = store  # knows the chats and users seen in updates
        self.admins: dict[int, set[int]] = {}
        self.owners: dict[int, int] = {}

    def get_chat_member(self, params: dict[str, Any]) -> dict[str, Any]:
        chat_id = chat_id_of(params)
        user_id = params.get("user_id")
        if not isinstance(user_id, int):
            raise bad_request("invalid user_id specified")
        user = self._user_json(user_id)
        if self.owners.get(chat_id) == user_id:
            return {"status": "creator", "user": user, "is_anonymous": False}
        if user_id in self.admins.get(chat_id, ()):
            return {"status": "administrator", "user": user, **_ADMIN_RIGHTS}
        return {"status": "member", "user": user}

    def get_chat(self, params: dict[str, Any]) -> dict[str, Any]:
        """A ChatFullInfo, with the fields python-telegram-bot requires. Like Telegram, a person
        who never wrote to the bot has no chat with it."""
        chat_id = chat_id_of(params)
        if chat_id > 0 and not self._store.knows(chat_id):
            raise bad_request("chat not found")
        return self._store.chat_json(chat_id) | {
            "accent_color_id": 0,
            "max_reaction_count": 11,
            "accepted_gift_types": dict.fromkeys(_GIFTS, True) | {"gifts_from_channels": False},
        }

    @staticmethod
    def send_chat_action(params: dict[str, Any]) -> bool:
        chat_id_of(params)
        if params.get("action") not in _CHAT_ACTIONS:
            raise bad_request("wrong parameter action in request")
        return True

    def _user_json(self, user_id: int) -> dict[str, Any]:
        bot = self._store.bot_user
        if user_id == bot["id"]:
            return bot
        known = self._store.users.get(user_id)
        return known or {"id": user_id, "is_bot": False, "first_name": f"User {user_id}"}
