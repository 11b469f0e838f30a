"""Running procrastinate workers: as the main program (``cleanit worker``) or in a background
thread next to the web server (``cleanit run``)."""

from __future__ import annotations

import asyncio
import logging
import threading

import procrastinate

log = logging.getLogger(__name__)


async def run_worker(
    app: procrastinate.App, *, concurrency: int = 4, install_signal_handlers: bool = True
) -> None:
    async with app.open_async():
        await app.run_worker_async(
            concurrency=concurrency, wait=True, install_signal_handlers=install_signal_handlers
        )


class WorkerThread:
    """A worker in a daemon thread with its own event loop; ``stop`` ends it cleanly."""

    def __init__(self, app: procrastinate.App, concurrency: int = 4) -> None:
        self.app = app
        self.concurrency = concurrency
        self._loop: asyncio.AbstractEventLoop | None = None
        self._task: asyncio.Task[None] | None = None
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._main, name="cleanit-worker", daemon=True)

    def start(self) -> None:
        self._thread.start()
        self._ready.wait(10)

    def _main(self) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        self._task = loop.create_task(
            run_worker(self.app, concurrency=self.concurrency, install_signal_handlers=False)
        )
        self._ready.set()
        try:
            loop.run_until_complete(self._task)
        except asyncio.CancelledError:
            pass
        except Exception:
            log.exception("the worker stopped with an error")
        finally:
            loop.close()

    def stop(self, timeout: float = 15) -> None:
        if self._loop is not None and self._task is not None and not self._task.done():
            self._loop.call_soon_threadsafe(self._task.cancel)
        self._thread.join(timeout)
