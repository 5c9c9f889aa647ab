"""`ai_usage_context`: what a call made inside it carries, across nesting, decorators, tasks and threads."""

from __future__ import annotations

import asyncio
import contextvars
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal

import pytest

from otel_ai_cost.attribution import UsageContext, ai_usage_context, current_attributes
from otel_ai_cost.contract import Attribution


def job_id() -> object:
    return current_attributes().get(Attribution.JOB_ID)


def test_keywords_map_to_span_attributes() -> None:
    with ai_usage_context(
        operation_type="batch_processing",
        job_id="job-1",
        batch_id=17,
        team="receipts",
        user_id="u-42",
        receipt_count=3,
        dry_run=False,
        ratio=0.5,
        amount=Decimal("1.50"),
        skipped=None,
    ) as usage:
        expected = {
            Attribution.OPERATION_TYPE: "batch_processing",
            Attribution.JOB_ID: "job-1",
            Attribution.BATCH_ID: 17,
            Attribution.TEAM: "receipts",
            Attribution.USER_ID: "u-42",
            Attribution.TAG_PREFIX + "receipt_count": 3,
            Attribution.TAG_PREFIX + "dry_run": False,
            Attribution.TAG_PREFIX + "ratio": 0.5,
            Attribution.TAG_PREFIX + "amount": "1.50",  # not an attribute type: str()-ed
        }
        assert dict(current_attributes()) == expected
        assert isinstance(usage, UsageContext)
        assert dict(usage.attributes) == expected
    assert dict(current_attributes()) == {}


def test_operation_type_is_positional_like_the_existing_helper() -> None:
    with ai_usage_context("integration_test", test_name="test_receipt_processing"):
        assert dict(current_attributes()) == {
            Attribution.OPERATION_TYPE: "integration_test",
            Attribution.TAG_PREFIX + "test_name": "test_receipt_processing",
        }


def test_attributes_are_read_only_and_not_rebuilt_per_call() -> None:
    with ai_usage_context(job_id="j"):
        first = current_attributes()
        assert first is current_attributes()  # precomputed on entry, not rebuilt on the hot path
        with pytest.raises(TypeError):
            first[Attribution.JOB_ID] = "other"  # type: ignore[index]


def test_nested_contexts_merge_and_inner_wins() -> None:
    with ai_usage_context(operation_type="batch", team="receipts", job_id="outer"):
        with ai_usage_context(job_id="inner", batch_id="b-1", team=None) as inner:
            assert dict(inner.attributes) == {
                Attribution.OPERATION_TYPE: "batch",
                Attribution.TEAM: "receipts",  # None never clears an enclosing value
                Attribution.JOB_ID: "inner",
                Attribution.BATCH_ID: "b-1",
            }
            assert current_attributes() == inner.attributes
        assert dict(current_attributes()) == {
            Attribution.OPERATION_TYPE: "batch",
            Attribution.TEAM: "receipts",
            Attribution.JOB_ID: "outer",
        }
    assert dict(current_attributes()) == {}


def test_context_is_left_when_the_block_raises() -> None:
    with pytest.raises(RuntimeError), ai_usage_context(job_id="j"):
        raise RuntimeError("provider down")
    assert dict(current_attributes()) == {}


def test_decorator_on_a_plain_function() -> None:
    @ai_usage_context(operation_type="report", job_id="nightly")
    def build(suffix: str) -> tuple[object, str]:
        """Builds the report."""
        return job_id(), suffix

    assert build("x") == ("nightly", "x")
    assert build.__name__ == "build" and build.__doc__ == "Builds the report."
    assert dict(current_attributes()) == {}

    @ai_usage_context(job_id="failing")
    def fail() -> None:
        raise ValueError("bad input")

    with pytest.raises(ValueError):
        fail()
    assert dict(current_attributes()) == {}


def test_decorator_on_an_async_function() -> None:
    @ai_usage_context(job_id="async-job")
    async def work() -> object:
        await asyncio.sleep(0)
        return job_id()

    async def main() -> tuple[object, object]:
        result = await work()
        return result, job_id()

    assert asyncio.run(main()) == ("async-job", None)


def test_decorated_function_called_inside_a_context_merges() -> None:
    @ai_usage_context(batch_id="b-9")
    def step() -> dict[str, object]:
        return dict(current_attributes())

    with ai_usage_context(job_id="j-1"):
        assert step() == {Attribution.JOB_ID: "j-1", Attribution.BATCH_ID: "b-9"}


def test_generator_functions_are_refused() -> None:
    def chunks() -> Iterator[int]:
        yield 1

    with pytest.raises(TypeError, match="generator"):
        ai_usage_context(job_id="j")(chunks)


def test_asyncio_sibling_tasks_are_isolated() -> None:
    async def worker(name: str, seen: list[object]) -> None:
        with ai_usage_context(job_id=name):
            for _ in range(5):
                seen.append(job_id())
                await asyncio.sleep(0)  # let the sibling run in between
        seen.append(job_id())

    async def main() -> tuple[list[object], list[object]]:
        a: list[object] = []
        b: list[object] = []
        await asyncio.gather(worker("job-a", a), worker("job-b", b))
        return a, b

    a, b = asyncio.run(main())
    assert a == ["job-a"] * 5 + [None]
    assert b == ["job-b"] * 5 + [None]


def test_tasks_created_inside_inherit_and_do_not_leak_back() -> None:
    async def child() -> object:
        with ai_usage_context(batch_id="child-batch"):
            await asyncio.sleep(0)
        return job_id()

    async def main() -> tuple[object, dict[str, object]]:
        with ai_usage_context(job_id="parent"):
            inherited = await asyncio.create_task(child())
            return inherited, dict(current_attributes())

    inherited, after = asyncio.run(main())
    assert inherited == "parent"
    assert after == {Attribution.JOB_ID: "parent"}


def test_one_instance_shared_by_concurrent_tasks() -> None:
    shared = ai_usage_context(operation_type="batch")

    async def worker(name: str) -> list[dict[str, object]]:
        seen = []
        with shared, ai_usage_context(job_id=name):
            await asyncio.sleep(0)
            seen.append(dict(current_attributes()))
        seen.append(dict(current_attributes()))
        return seen

    async def main() -> list[list[dict[str, object]]]:
        return await asyncio.gather(worker("a"), worker("b"))

    first, second = asyncio.run(main())
    assert first == [{Attribution.OPERATION_TYPE: "batch", Attribution.JOB_ID: "a"}, {}]
    assert second == [{Attribution.OPERATION_TYPE: "batch", Attribution.JOB_ID: "b"}, {}]


def test_threads_each_have_their_own_context() -> None:
    barrier = threading.Barrier(2)
    seen: dict[str, list[object]] = {}

    def worker(name: str) -> None:
        with ai_usage_context(job_id=name):
            barrier.wait()  # both threads are inside their context now
            seen[name] = [job_id()]
            barrier.wait()
        seen[name].append(job_id())

    with ai_usage_context(job_id="main-thread"):
        threads = [threading.Thread(target=worker, args=(name,)) for name in ("t1", "t2")]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert job_id() == "main-thread"
    assert seen == {"t1": ["t1", None], "t2": ["t2", None]}


def test_thread_pool_worker_needs_a_copied_context() -> None:
    with ThreadPoolExecutor(max_workers=1) as pool, ai_usage_context(job_id="submitter"):
        assert pool.submit(job_id).result() is None  # documented: not inherited
        assert pool.submit(contextvars.copy_context().run, job_id).result() == "submitter"


def test_asyncio_to_thread_carries_the_context() -> None:
    async def main() -> object:
        with ai_usage_context(job_id="async-submitter"):
            return await asyncio.to_thread(job_id)

    assert asyncio.run(main()) == "async-submitter"
