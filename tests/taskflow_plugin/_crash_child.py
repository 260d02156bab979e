"""A TaskFlow application run by test_crash.py: plain TaskFlow code, configured
only through the plugin's connection string.

    _crash_child.py run|resume CONF_JSON WORKDIR BOOK_UUID

``run`` starts a new flow in logbook BOOK_UUID; ``resume`` loads that logbook
and runs its flow detail again.  Each task execution appends its name to
WORKDIR/executions; task ``s4`` blocks (after writing WORKDIR/blocked) until
WORKDIR/release exists.  ``resume`` prints the flow's results as JSON.
"""

import json
import os
import sys
import time

import taskflow.engines
from taskflow import task
from taskflow.patterns import graph_flow, linear_flow
from taskflow.persistence import backends, models

mode, conf, workdir, book_uuid = sys.argv[1], json.loads(sys.argv[2]), sys.argv[3], sys.argv[4]


class Step(task.Task):
    def execute(self, **inputs):
        fd = os.open(os.path.join(workdir, "executions"), os.O_WRONLY | os.O_APPEND | os.O_CREAT)
        os.write(fd, f"{self.name}\n".encode())
        os.close(fd)
        if self.name == "s4" and not os.path.exists(os.path.join(workdir, "release")):
            open(os.path.join(workdir, "blocked"), "w").close()
            while True:
                time.sleep(0.05)
        return sum(inputs.values()) + int(self.name[1:])


def make_flow():
    middle = graph_flow.Flow("middle").add(
        Step("s2", provides="v2", requires=["v1"]),
        Step("s3", provides="v3", requires=["v1"]),
        Step("s4", provides="v4", requires=["v2", "v3"]))
    return linear_flow.Flow("pipeline").add(
        Step("s1", provides="v1", requires=["seed"]), middle,
        Step("s5", provides="v5", requires=["v4"]),
        Step("s6", provides="v6", requires=["v5"]))


if mode == "run":
    book = models.LogBook("crash-test", uuid=book_uuid)
    taskflow.engines.load(make_flow(), store={"seed": 100}, book=book, backend=conf).run()
else:
    backend = backends.fetch(conf)
    conn = backend.get_connection()
    book = conn.get_logbook(book_uuid)
    (flow_detail,) = list(book)
    engine = taskflow.engines.load(make_flow(), flow_detail=flow_detail, book=book,
                                   backend=conf)
    engine.run()
    print(json.dumps(engine.storage.fetch_all(), sort_keys=True))
