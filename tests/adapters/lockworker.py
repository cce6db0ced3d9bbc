"""A process that uses the Redis lock, for tests/adapters/test_redis_lock.py: started as
`python lockworker.py '<json>'`, it talks to the test on its stdin/stdout, one JSON line at a time.

Modes (the JSON's "mode"):
- contend: say {"ready": true}, wait for a line on stdin, then run `tasks` tasks that each take
  the lock once. Inside, each INCRs a shared counter (more than 1 means two holders at once) and
  RPUSHes "pid:token" onto a shared list (the list is the order the lock was held in).
  Say {"done": n, "overlaps": n, "timeouts": n, "errors": [...]}.
- hold: take the lock (lease `lease`, or the watchdog's with `lease` null), say {"token": t},
  and hold it until killed.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import sys
from typing import Any

from redis.asyncio import Redis

from adapters.lock.redis import RedisLock
from domain.errors import LockTimeout


def say(message: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(message) + "\n")
    sys.stdout.flush()


async def contend(job: dict[str, Any]) -> None:
    lock = RedisLock.from_url(job["url"], prefix=job["prefix"])
    shared = Redis.from_url(job["url"])
    counter, order = job["prefix"] + "inside", job["prefix"] + "order"
    done = overlaps = timeouts = 0
    errors: list[str] = []

    async def task() -> None:
        nonlocal done, overlaps, timeouts
        try:
            async with lock.hold(job["key"], wait_time=job["wait"], lease_time=job["lease"]) as token:
                if await shared.incr(counter) != 1:
                    overlaps += 1
                await shared.rpush(order, f"{os.getpid()}:{token}")
                await asyncio.sleep(random.uniform(0, job["hold"]))
                if await shared.decr(counter) != 0:
                    overlaps += 1
            done += 1
        except LockTimeout:
            timeouts += 1
        except Exception as error:
            errors.append(repr(error))

    say({"ready": True})
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)
    try:
        await asyncio.gather(*(task() for _ in range(job["tasks"])))
    finally:
        await shared.aclose()
        await lock.close()
    say({"done": done, "overlaps": overlaps, "timeouts": timeouts, "errors": errors})


async def hold(job: dict[str, Any]) -> None:
    lock = RedisLock.from_url(job["url"], prefix=job["prefix"], watchdog_lease=job.get("watchdog", 30.0))
    async with lock.hold(job["key"], wait_time=10, lease_time=job["lease"]) as token:
        say({"token": token})
        await asyncio.sleep(3600)


if __name__ == "__main__":
    job = json.loads(sys.argv[1])
    asyncio.run({"contend": contend, "hold": hold}[job["mode"]](job))
