"""Each chat's share of the job slots: one user's 50 notes or one busy group do not keep another
chat's note waiting."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable


class ChatTurns:
    """At most `per_chat` jobs of one chat run at once; the rest wait for their chat's turn,
    inside `waiting()` (the dispatcher's: a job waiting there holds no slot)."""

    def __init__(
        self, per_chat: int, waiting: Callable[[], contextlib.AbstractAsyncContextManager[None]]
    ) -> None:
        self._per_chat = per_chat
        self._waiting = waiting
        self._chats: dict[int, _Turns] = {}
        self.waiters = 0  # jobs waiting for their chat's turn: started, holding only a lease

    @contextlib.asynccontextmanager
    async def turn(self, chat_id: int) -> AsyncIterator[None]:
        turns = self._chats.get(chat_id)
        if turns is None:
            turns = self._chats[chat_id] = _Turns(self._per_chat)
        turns.users += 1
        try:
            if turns.gate.locked():
                self.waiters += 1
                try:
                    async with self._waiting():
                        await turns.gate.acquire()
                finally:
                    self.waiters -= 1
            else:
                await turns.gate.acquire()
            try:
                yield
            finally:
                turns.gate.release()
        finally:
            turns.users -= 1
            if turns.users == 0:
                del self._chats[chat_id]


class _Turns:
    def __init__(self, slots: int) -> None:
        self.gate = asyncio.Semaphore(slots)
        self.users = 0
