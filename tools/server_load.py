"""Load on a running `kandinsky serve` (loopback only): CLIENTS threads submit JOBS small text2img jobs on the
default model between them, each waiting for its job by polling GET /v1/jobs/{id}. A full queue must answer a clean
429 (Retry-After and a JSON error), after which the client retries; every accepted job must succeed; afterwards the
server must hold one worker process and no open event stream.

    python tools/server_load.py PORT SERVER_PID [--clients 50] [--jobs 200]

Prints the figures (throughput, latency of GET /v1/jobs/{id}) as one JSON line; exits 1 on any miss, naming it.
"""

import argparse
import http.client
import json
import os
import sys
import threading
import time


def percentile(values, fraction):
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def worker_processes(server_pid):
    """Children of the server (its worker processes)."""
    children = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as stat:
                fields = stat.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == server_pid and fields[0] != "Z":
            children.append(int(entry))
    return children


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("port", type=int)
    parser.add_argument("server_pid", type=int)
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--jobs", type=int, default=200)
    options = parser.parse_args()

    lock = threading.Lock()
    next_index = [0]
    latencies = []
    refusals = []
    problems = []
    outcomes = {}

    def take():
        with lock:
            if next_index[0] >= options.jobs:
                return None
            next_index[0] += 1
            return next_index[0] - 1

    def client():
        connection = http.client.HTTPConnection("127.0.0.1", options.port, timeout=120)
        while (index := take()) is not None:
            body = json.dumps({
                "plugin": "text2img",
                "params": {"prompt": "a red circle on a blue background", "seed": index, "width": 64, "height": 64,
                           "num_inference_steps": 1, "prior_num_inference_steps": 2},
            })
            while True:
                connection.request("POST", "/v1/jobs", body, {"Content-Type": "application/json"})
                reply = connection.getresponse()
                payload = reply.read()
                if reply.status == 202:
                    job = json.loads(payload)["id"]
                    break
                if reply.status == 429:
                    error = json.loads(payload).get("error", {})
                    if not reply.getheader("Retry-After") or "queue is full" not in error.get("message", ""):
                        with lock:
                            problems.append(f"job {index}: a 429 without Retry-After or message: {payload[:200]}")
                    with lock:
                        refusals.append(index)
                    time.sleep(0.5)
                    continue
                with lock:
                    problems.append(f"job {index}: POST /v1/jobs answered {reply.status}: {payload[:200]}")
                return
            while True:
                started = time.perf_counter()
                connection.request("GET", f"/v1/jobs/{job}")
                reply = connection.getresponse()
                payload = reply.read()
                elapsed = time.perf_counter() - started
                with lock:
                    latencies.append(elapsed)
                state = json.loads(payload)["state"]
                if state in ("succeeded", "failed", "cancelled"):
                    with lock:
                        outcomes[job] = state
                    break
                time.sleep(0.05)
        connection.close()

    began = time.perf_counter()
    threads = [threading.Thread(target=client) for _ in range(options.clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    wall = time.perf_counter() - began

    connection = http.client.HTTPConnection("127.0.0.1", options.port, timeout=30)
    connection.request("GET", "/metrics")
    metrics = dict(
        line.rsplit(" ", 1)
        for line in connection.getresponse().read().decode().splitlines()
        if not line.startswith("#")
    )
    not_succeeded = {job: state for job, state in outcomes.items() if state != "succeeded"}
    if len(outcomes) != options.jobs:
        problems.append(f"{len(outcomes)} of {options.jobs} jobs were accepted and ended")
    if not_succeeded:
        problems.append(f"jobs that did not succeed: {not_succeeded}")
    if metrics.get("kandinsky_worker_starts_total") != "1":
        problems.append(f"worker starts {metrics.get('kandinsky_worker_starts_total')} (expected 1)")
    if metrics.get("kandinsky_event_subscribers") != "0":
        problems.append(f"event subscribers left open: {metrics.get('kandinsky_event_subscribers')}")
    workers = worker_processes(options.server_pid)
    if len(workers) != 1:
        problems.append(f"the server has {len(workers)} worker processes (expected 1): {workers}")
    figures = {
        "clients": options.clients, "jobs": options.jobs, "seconds": round(wall, 1),
        "jobs_per_second": round(options.jobs / wall, 2), "refused_429": len(refusals),
        "status_requests": len(latencies), "status_p50_ms": round(1000 * percentile(latencies, 0.5), 2),
        "status_p99_ms": round(1000 * percentile(latencies, 0.99), 2),
        "status_requests_per_second": round(len(latencies) / wall, 1),
    }
    print(json.dumps(figures))
    for problem in problems:
        print("FAIL " + problem)
    sys.exit(1 if problems else 0)


if __name__ == "__main__":
    main()
