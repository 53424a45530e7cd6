"""The process that runs apprise for the daemon: ``python -m alertd.senders.child``.

Once it has imported apprise it says ``{"ready": true}``; then it reads one request per line
on stdin (JSON: url, title, body, type), sends it with ``apprise_sender.send_blocking``
(``alertmanager.send_blocking`` for ``alertmanager://`` URLs: plain HTTP, no apprise) and
answers one line on stdout (a ``DeliveryOutcome`` as JSON), until stdin ends. The daemon
kills it when a send overruns its deadline: a thread stuck in a receiver that trickles one
byte every few seconds cannot be stopped, a process can (STYLE.md convention 16).
"""

from __future__ import annotations

import json
import sys
import warnings


def main() -> None:
    answers = sys.stdout.buffer
    sys.stdout = sys.stderr  # a stray print() of a plugin must not break the protocol
    warnings.filterwarnings("ignore", category=DeprecationWarning)  # apprise's imghdr
    from alertd.senders import alertmanager
    from alertd.senders.apprise_sender import mask, secret_parts, send_blocking
    from alertd.senders.outcome import DeliveryOutcome

    answers.write(b'{"ready": true}\n')  # imported: the parent's send deadline starts now
    answers.flush()
    for line in sys.stdin.buffer:
        request = json.loads(line)
        url = str(request["url"])
        try:
            if alertmanager.is_alertmanager(url):  # plain HTTP, no apprise
                outcome = alertmanager.send_blocking(url, str(request["body"]))
            else:
                outcome = send_blocking(url, str(request["title"]), str(request["body"]),
                                        str(request.get("type", "info")))
        except Exception as error:  # noqa: BLE001 - a plugin's bug becomes a retry, masked
            text = mask(f"{type(error).__name__}: {error}", secret_parts(url))
            outcome = DeliveryOutcome.retry(f"apprise failed: {text[:300]}")
        answers.write(json.dumps(outcome.to_json()).encode() + b"\n")
        answers.flush()


if __name__ == "__main__":
    main()
