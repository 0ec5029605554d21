"""Calls of typed tasks that mypy --strict must accept, and (marked `# wrong`) refuse.

tests/unit/test_typed_tasks.py runs mypy over this file: every marked line, and no other,
must be an error. It is never imported.
"""

from multidb.queue.tasks import add, broadcast, notify, ping

total: float = add.delay(2, 3).get()
total = add.delay(x=2, y=3.5).get(timeout=10)
total = add.apply_async(args=(1, 2)).get()
total = add.apply_async(args=(1.5, 2), countdown=10, task_id="abc").get()
add.delay("x", 3)  # wrong: a str where a float goes
add.delay(1)  # wrong: y is missing
add.delay(1, 2, 3)  # wrong: one argument too many
add.apply_async(args=(1,))  # wrong: the tuple must hold every positional argument
add.apply_async(args=("a", 2))  # wrong: a str where a float goes
word: str = add.delay(1, 2).get()  # wrong: the result is a float

pong: str = ping.delay().get()
ping.delay(1)  # wrong: ping takes nothing

sent: bool = notify.delay("0a0b", "message").get()  # an async task's result is what it returns
notify.delay("0a0b", "message", data={"text": "hi"})
notify.delay("0a0b", "task:finished")  # wrong: not a notice event
notify.apply_async(args=("0a0b", "notification", None))
broadcast.delay("message", {"text": "hi"})
broadcast.delay(event="disconnect")  # wrong: not a notice event
state: str = add.delay(1, 2).state
