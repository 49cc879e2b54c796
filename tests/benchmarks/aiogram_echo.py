"""A minimal aiogram 3 echo bot: the comparison point for Closer's Telegram adapter.

It long-polls the Bot API at --api-url (the fake server of closer-tests) and answers every text
message with the same text. Like a typical aiogram bot it has no pacing of its own: it sends at
once and, on a 429, sleeps the `retry_after` Telegram asked for and sends again, so that every
message is answered and the benchmark can finish.

    python3 aiogram_echo.py --api-url http://127.0.0.1:PORT --token 123456:TEST-fake-token
"""

import argparse
import asyncio
import logging

from aiogram import Bot, Dispatcher, F
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.client.telegram import TelegramAPIServer
from aiogram.exceptions import TelegramRetryAfter
from aiogram.types import Message

router_dispatcher = Dispatcher()


@router_dispatcher.message(F.text)
async def echo(message: Message) -> None:
    while True:
        try:
            await message.answer(message.text)
            return
        except TelegramRetryAfter as error:
            await asyncio.sleep(error.retry_after)


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--api-url", required=True, help="the Bot API base URL, no trailing slash")
    parser.add_argument("--token", required=True)
    arguments = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    session = AiohttpSession(api=TelegramAPIServer.from_base(arguments.api_url))
    bot = Bot(token=arguments.token, session=session)
    await router_dispatcher.start_polling(bot, handle_signals=True)


if __name__ == "__main__":
    asyncio.run(main())
