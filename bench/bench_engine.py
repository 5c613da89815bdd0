"""Benchmark of the engine at a provider's rate limit, against the loopback fake provider.

    python bench/bench_engine.py [--requests 1000] [--rpm 600] [--latency 0.2] [--big 20000]

1. Throughput at the limit. The fake provider answers after `--latency` seconds and allows
   `--rpm` requests a minute (429 with retry-after beyond it). The engine sends `--requests`
   reviews through the `openai` backend (rpm configured to the limit). Then,
   in the same run, the same requests are sent the way one writes it by hand:
   `asyncio.gather` over all of them with a semaphore and the SDK's own retries (the default
   2, which honour retry-after). Reported for each: wall time, throughput as a fraction of
   the limit, 429s received, requests the provider served over its limit, requests that
   failed for good. Two provider models, both run:
   - "minute": the limit counted over a sliding 60 s window. An empty window lets a burst
     of a whole minute's requests through at once, so a short run that bursts can finish
     faster than the limit's pace;
   - "second": the same limit enforced over 1 s (rpm/60 per sliding second), as providers
     that quantize their per-minute limits do. A burst is refused there.
2. The engine's own CPU time per review: the same pipeline with a backend that returns a
   canned valid reply at once (no HTTP, no model), so what is measured is rendering,
   validation, the store and the scheduling.
4. Limits that are learned (`--learned N`): N reviews through the `openai` backend against a
   provider enforcing `--rpm` a minute counted per second (rpm/60 in any sliding second),
   with `--concurrency` and `--latency` as above, three ways in one run: no rpm in the
   member and the provider sending its rate-limit headers (the limit is learned from them);
   no rpm and no headers (the limit is found by AIMD from 429s); rpm configured. For each:
   requests, 429s (and their share of requests), the fraction of the limit reached (requests
   admitted a minute, first to last, on the provider's clock), requests served over the
   limit, valid reviews, and the limit the member ended paced to.
3. Peak memory of a large run: `panel review` of a generated catalog of `--big / 4` tools x 4
   personas on the built-in fake backend, in a child process; its peak resident set size.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from panel.backends.fake import FakeBackend  # noqa: E402
from panel.backends.registry import parse_member  # noqa: E402
from panel.personas import load_personas  # noqa: E402
from panel.prompts import PromptSet  # noqa: E402
from panel.resources import data_dir  # noqa: E402
from panel.run.cells import Member  # noqa: E402
from panel.run.engine import Engine  # noqa: E402
from panel.run.limits import RateLimiter  # noqa: E402
from panel.run.plan import Plan, RunOptions, build_members, run_plan  # noqa: E402
from panel.store import Store  # noqa: E402
from panel.testing.fake_provider import FakeProvider  # noqa: E402
from panel.testing.schema_fill import fill  # noqa: E402

KEY = "sk-bench-not-a-real-key"


def synthetic_catalog(n_tools: int) -> list[dict[str, object]]:
    return [
        {
            "id": f"tool-{i:05d}",
            "name": f"Tool {i}",
            "category": "Developer Tools",
            "tagline": f"Synthetic tool number {i} for load tests",
            "description": f"Tool {i} is a generated catalog entry with a short description of about "
            "the length a real entry has, so prompts are of a realistic size.",
            "pricing": {"model": ["free", "freemium", "paid", "enterprise"][i % 4], "note": ""},
            "facts": [f"Fact {j} about tool {i}." for j in range(3)],
        }
        for i in range(n_tools)
    ]


def write_catalog(path: Path, n_tools: int) -> Path:
    path.write_text("".join(json.dumps(t) + "\n" for t in synthetic_catalog(n_tools)))
    return path


def plan_for(catalog: Path, members: list[Member], specs: list[object]) -> Plan:
    from panel.catalog import load_catalog

    return Plan(
        tools=list(load_catalog(catalog)),
        personas=list(load_personas(data_dir("personas")).values()),
        members=members,
        specs=specs,  # type: ignore[arg-type]
        catalog_path=catalog,
    )


def engine_at_limit(fake: FakeProvider, catalog: Path, rpm: float, concurrency: int) -> dict[str, float]:
    """The engine through the openai backend, paced by the member's configured rpm."""
    spec = parse_member(
        "openai:gpt-4.1-mini",
        {"base_url": fake.base_url("openai"), "rpm": rpm, "concurrency": concurrency, "timeout": 30},
    )
    plan = plan_for(catalog, build_members([spec]), [spec])
    fake.reset()
    with tempfile.TemporaryDirectory() as out, Store(out) as store:
        started = time.perf_counter()
        _, stats = asyncio.run(run_plan(plan, store, "bench", options=RunOptions(use_cache=False)))
        elapsed = time.perf_counter() - started
    s = fake.stats()
    return {
        "requests": s["requests"],
        "valid_reviews": stats.valid,
        "wall_s": elapsed,
        "fraction_of_limit": stats.sent / elapsed * 60 / rpm,
        "429s": s["rate_limited"],
        "over_limit_served": s["over_limit_served"],
        "failed": stats.failed,
    }


def learned_limit(
    fake: FakeProvider, catalog: Path, rpm: float, concurrency: int, configured: bool
) -> dict[str, object]:
    """The engine through the openai backend, its member's limit configured or left to learn."""
    options: dict[str, object] = {"base_url": fake.base_url("openai"), "concurrency": concurrency}
    options["timeout"] = 30
    if configured:
        options["rpm"] = rpm
    spec = parse_member("openai:gpt-4.1-mini", options)
    (member,) = build_members([spec])
    plan = plan_for(catalog, [member], [spec])
    fake.reset()
    with tempfile.TemporaryDirectory() as out, Store(out) as store:
        _, stats = asyncio.run(run_plan(plan, store, "bench", options=RunOptions(use_cache=False)))
    s = fake.stats()
    first, last = s["admitted_span"]
    limiter = member.limiter
    return {
        "requests": s["requests"],
        "429s": s["rate_limited"],
        "429_share": round(s["rate_limited"] / s["requests"], 4),
        "fraction_of_limit": round((s["admitted"] - 1) / (last - first) * 60 / rpm, 3),
        "over_limit_served": s["over_limit_served"],
        "valid_reviews": stats.valid,
        "failed": stats.failed,
        "paced_to_rpm": None if limiter.rpm is None else round(limiter.rpm, 1),
        "source": limiter.source["requests"] or ("aimd" if limiter.rpm else None),
        "headroom": None if limiter.requests is None else round(limiter.requests.headroom, 4),
    }


def by_hand(fake: FakeProvider, catalog: Path, rpm: float, concurrency: int) -> dict[str, float]:
    """The same first-ask requests with asyncio.gather, a semaphore and the SDK's retries."""
    from openai import AsyncOpenAI, OpenAIError

    prompts = PromptSet()
    personas = list(load_personas(data_dir("personas")).values())
    plan = plan_for(catalog, [], [])
    bodies = [(prompts.review_messages(p, t), p.review_schema, p.id) for t in plan.tools for p in personas]
    fake.reset()

    async def main() -> tuple[int, int, float]:
        client = AsyncOpenAI(base_url=fake.base_url("openai"), api_key=KEY, timeout=30)
        gate = asyncio.Semaphore(concurrency)
        failures = 0

        async def one(messages: list[dict[str, str]], schema: dict[str, object], name: str) -> bool:
            async with gate:
                try:
                    await client.chat.completions.create(
                        model="gpt-4.1-mini",
                        messages=messages,  # type: ignore[arg-type]
                        response_format={
                            "type": "json_schema",
                            "json_schema": {"name": name, "schema": schema, "strict": True},
                        },
                        max_tokens=700,
                    )
                    return True
                except OpenAIError:
                    return False

        started = time.perf_counter()
        results = await asyncio.gather(*(one(*b) for b in bodies))
        elapsed = time.perf_counter() - started
        await client.close()
        failures = sum(1 for ok in results if not ok)
        return len(results) - failures, failures, elapsed

    ok, failures, elapsed = asyncio.run(main())
    s = fake.stats()
    return {
        "requests": s["requests"],
        "succeeded": ok,
        "wall_s": elapsed,
        "fraction_of_limit": ok / elapsed * 60 / rpm,
        "429s": s["rate_limited"],
        "over_limit_served": s["over_limit_served"],
        "failed": failures,
    }


def engine_cpu_per_review(catalog: Path, personas_n: int) -> dict[str, float]:
    """CPU seconds per review of the engine alone, with canned replies."""
    personas = list(load_personas(data_dir("personas")).values())
    canned = {p.review_schema["title"]: json.dumps(fill(p.review_schema, p.id)) for p in personas}
    backend = FakeBackend("canned", responder=lambda request, n: canned[request.schema["title"]])
    member = Member(backend, concurrency=8, limiter=RateLimiter())
    plan = plan_for(catalog, [member], [])
    with tempfile.TemporaryDirectory() as out, Store(out) as store:
        store.create_run("bench", "bench", None, {}, [], [])
        engine = Engine(store, "bench", plan.prompts, [member], use_cache=False)
        cpu, wall = time.process_time(), time.perf_counter()
        stats = asyncio.run(engine.run(plan.cells_for, plan.total))
        cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    return {"reviews": stats.done, "cpu_ms_per_review": 1000 * cpu / stats.done, "wall_s": wall}


def peak_memory(n_requests: int, out: Path) -> dict[str, float]:
    catalog = write_catalog(out / "big.jsonl", n_requests // 4)
    started = time.perf_counter()
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    subprocess.run(
        [
            sys.executable,
            "-m",
            "panel",
            "review",
            str(catalog),
            "--backend",
            "fake",
            "--out",
            str(out / "runs"),
            "--progress",
            "quiet",
        ],
        check=True,
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
    )
    peak_kb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    lines = sum(1 for _ in next((out / "runs").glob("*/reviews.jsonl")).open())
    return {
        "requests": n_requests,
        "reviews_written": lines,
        "peak_rss_mb": peak_kb / 1024,
        "rss_of_earlier_children_mb": before / 1024,
        "wall_s": time.perf_counter() - started,
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--requests", type=int, default=1000)
    parser.add_argument("--rpm", type=float, default=600)
    parser.add_argument("--latency", type=float, default=0.2)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--big", type=int, default=20000)
    parser.add_argument("--cpu-reviews", type=int, default=2000)
    parser.add_argument("--learned", type=int, default=0, help="reviews per learned-limit run (0: skip)")
    parser.add_argument(
        "--windows", default="minute,second", help="which provider models to run: minute, second or both"
    )
    args = parser.parse_args()
    os.environ["OPENAI_API_KEY"] = KEY
    results: dict[str, object] = {}
    with tempfile.TemporaryDirectory() as tmp:
        tmpdir = Path(tmp)
        # The memory run goes first, so that its child is the largest RUSAGE_CHILDREN has seen.
        if args.big:
            print(f"3. peak memory of a {args.big}-request `panel review` (fake backend)", flush=True)
            results["memory"] = peak_memory(args.big, tmpdir)
            print("   ", json.dumps(results["memory"]), flush=True)

        catalog = write_catalog(tmpdir / "catalog.jsonl", args.requests // 4)
        chosen = args.windows.split(",")
        for window, per_window in [(w, p) for w, p in (("minute", 60.0), ("second", 1.0)) if w in chosen]:
            limit = int(args.rpm * per_window / 60)
            with FakeProvider(latency=args.latency, rpm=limit, rate_window=per_window, history=10) as fake:
                print(
                    f"1. {args.requests} requests, limit {args.rpm:.0f} rpm counted per {window} "
                    f"({limit} per {per_window:.0f} s), {args.latency} s latency",
                    flush=True,
                )
                engine = engine_at_limit(fake, catalog, args.rpm, args.concurrency)
                print("    engine:  ", json.dumps(engine), flush=True)
                hand = by_hand(fake, catalog, args.rpm, args.concurrency)
                print("    by hand: ", json.dumps(hand), flush=True)
                results[f"per_{window}"] = {"engine": engine, "by_hand": hand}

        if args.learned:
            per_second = int(args.rpm // 60)
            learned_catalog = write_catalog(tmpdir / "learned.jsonl", max(1, args.learned // 4))
            print(
                f"4. {args.learned} reviews, limit {args.rpm:.0f} rpm counted per second "
                f"({per_second} per 1 s), {args.latency} s latency, concurrency {args.concurrency}",
                flush=True,
            )
            learned: dict[str, object] = {}
            for name, headers, configured in (
                ("headers", True, False),
                ("no_headers", False, False),
                ("configured", True, True),
            ):
                with FakeProvider(
                    latency=args.latency,
                    rpm=per_second,
                    rate_window=1.0,
                    limit_period=60.0,
                    rate_headers=headers,
                    history=10,
                ) as fake:
                    run = learned_limit(fake, learned_catalog, args.rpm, args.concurrency, configured)
                learned[name] = run
                print(f"    {name + ':':12}", json.dumps(learned[name]), flush=True)
            results["learned"] = learned

        if args.cpu_reviews:
            print(f"2. engine CPU per review ({args.cpu_reviews} reviews, canned replies)", flush=True)
            cpu_catalog = write_catalog(tmpdir / "cpu.jsonl", args.cpu_reviews // 4)
            results["cpu"] = engine_cpu_per_review(cpu_catalog, 4)
            print("   ", json.dumps(results["cpu"]), flush=True)
    print("summary " + json.dumps(results))


if __name__ == "__main__":
    main()
