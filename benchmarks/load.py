"""A load generator in a process of its own: threads with keep-alive clients POST /v1/decisions.

Bounded in count and in time; prints {"requests", "decisions", "seconds", "errors"} as JSON. Every body is
serialised before the clock starts, so the client's own work per request is the send and the read.
"""

from __future__ import annotations

import argparse
import json
import threading
import time

import httpx


def bodies(prefix: str, requests: int, batch: int) -> list[bytes]:
    out = []
    for r in range(requests):
        items = [
            {
                "decision_id": f"{prefix}-{r}-{i}",
                "alert_id": f"A-{prefix}-{r}-{i}",
                "tenant": ("acme", "globex")[i % 2],
                "severity": (10, 45, 75, 95)[(r + i) % 4],
                "rule_family": ("phishing", "impossible_travel", "dns_tunnel")[(r + i) % 3],
                "data_source": ("o365", "okta")[r % 2],
                "verdict": "close" if (r + i) % 10 else "escalate",
                "decided_at": "2026-03-02T10:00:00Z",
            }
            for i in range(batch)
        ]
        out.append(json.dumps(items).encode())
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("url")
    parser.add_argument("token")
    parser.add_argument("--threads", type=int, default=8)
    parser.add_argument("--requests", type=int, required=True, help="requests in all")
    parser.add_argument("--batch", type=int, default=1, help="decisions per request")
    parser.add_argument("--seconds", type=float, default=60.0, help="stop sending after this long")
    parser.add_argument("--prefix", default="load")
    args = parser.parse_args()
    work = bodies(args.prefix, args.requests, args.batch)
    headers = {"authorization": f"Bearer {args.token}", "content-type": "application/json"}
    lock = threading.Lock()
    done = [0, 0]  # requests answered 200, errors

    def worker(mine: list[bytes], deadline: float) -> None:
        with httpx.Client(base_url=args.url, headers=headers, timeout=60) as client:
            for body in mine:
                if time.perf_counter() > deadline:
                    return
                ok = client.post("/v1/decisions", content=body).status_code == 200
                with lock:
                    done[0 if ok else 1] += 1

    start = time.perf_counter()
    deadline = start + args.seconds
    threads = [
        threading.Thread(target=worker, args=(work[t :: args.threads], deadline)) for t in range(args.threads)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    seconds = time.perf_counter() - start
    report = {"requests": done[0], "decisions": done[0] * args.batch, "seconds": seconds, "errors": done[1]}
    print(json.dumps(report))


if __name__ == "__main__":
    main()
