from __future__ import annotations

import gc
import json
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx2
import pytest

from keyfindings import Paper, ResultCache, RetryPolicy, Summarizer
from keyfindings.backends.openai_compat import OpenAICompatBackend
from tests.scripted_server import ScriptedServer

FIXTURES = Path(__file__).parent / "fixtures"
SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "pubmedqa_dev.jsonl"


@pytest.fixture(scope="session")
def models_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One assembled copy of the embedded model (1.1 GB) for the whole session."""
    return tmp_path_factory.mktemp("models")


@pytest.fixture(autouse=True)
def _collect_garbage() -> Iterator[None]:
    """Collect after every test, so an unclosed socket or file is reported by the test that
    leaked it, not by whichever test the garbage collector happens to run in."""
    yield
    gc.collect()


@pytest.fixture(autouse=True)
def _isolated_dirs(tmp_path: Path, models_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """No test touches the user's cache or picks up a real API key or server."""
    monkeypatch.setenv("KEYFINDINGS_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("KEYFINDINGS_MODELS_DIR", str(models_dir))
    for name in ("OPENAI_API_KEY", "OPENAI_BASE_URL", "KEYFINDINGS_MODEL"):
        monkeypatch.delenv(name, raising=False)
    OpenAICompatBackend._modes.clear()


@pytest.fixture
def rct() -> Paper:
    return Paper.model_validate(json.loads((FIXTURES / "rct.json").read_text()))


@pytest.fixture
def review() -> Paper:
    return Paper.model_validate(json.loads((FIXTURES / "review.json").read_text()))


@pytest.fixture
def server() -> Iterator[ScriptedServer]:
    srv = ScriptedServer().start()
    yield srv
    srv.stop()


@pytest.fixture
def cache(tmp_path: Path) -> ResultCache:
    return ResultCache(tmp_path / "results")


FAST_RETRY = RetryPolicy(attempts=3, initial_wait=0.01, max_wait=0.05, max_retry_after=2.0)


@pytest.fixture
def make_summarizer(server: ScriptedServer, cache: ResultCache) -> Iterator[Any]:
    made: list[Summarizer] = []

    def make(**kwargs: Any) -> Summarizer:
        timeout = kwargs.pop("timeout", 5.0)
        backend = OpenAICompatBackend(
            "test-model", base_url=server.base_url, api_key="sk-secret-test-key", timeout=timeout
        )
        kwargs.setdefault("cache", cache)
        kwargs.setdefault("retry", FAST_RETRY)
        made.append(Summarizer(backend, **kwargs))
        return made[-1]

    yield make
    for summarizer in made:
        summarizer.backend.close()


def rct_answer(**changes: Any) -> dict[str, Any]:
    """A correct, grounded answer for the RCT fixture in the cited-findings format."""
    answer: dict[str, Any] = {
        "study_type": "randomized_controlled_trial",
        "methodology": [
            {
                "text": "Double-blind, placebo-controlled randomised trial in 24 primary schools.",
                "evidence": [3],
            },
            {
                "text": "1,248 children aged 6 to 11 years were randomly assigned to 1,000 IU of "
                "vitamin D3 daily or placebo from October to March.",
                "evidence": [4],
            },
        ],
        "results": [
            {
                "text": "Infections occurred in 187 children (30.0%) with vitamin D and "
                "241 children (38.6%) with placebo (risk ratio 0.78; 95% CI 0.66-0.91; p = 0.002).",
                "evidence": [6],
            },
            {"text": "School absence fell by 1.4 days per child.", "evidence": [7]},
        ],
        "significance": [
            {
                "text": "Daily vitamin D3 supplementation reduced laboratory-confirmed respiratory "
                "infections in schoolchildren during winter.",
                "evidence": [9],
            },
        ],
        "limitations": [
            {
                "text": "The effect was modest and may not extend to children with adequate "
                "baseline vitamin D levels.",
                "evidence": [10],
            },
        ],
    }
    answer.update(changes)
    return answer


def wait_until(condition: Callable[[], Any], timeout: float = 30.0) -> Any:
    """Poll ``condition`` until it returns something truthy, and return that; fail the test
    after ``timeout`` seconds (every wait in the tests has a deadline)."""
    deadline = time.monotonic() + timeout
    while not (value := condition()):
        assert time.monotonic() < deadline, f"still waiting after {timeout:g} s"
        time.sleep(0.02)
    return value


def answers(url: str) -> bool:
    """Whether a server answers 200 at ``url`` (for waiting on one that is starting)."""
    try:
        return httpx2.get(url, timeout=2).status_code == 200
    except httpx2.HTTPError:
        return False


@contextmanager
def running(app: Any, **options: Any) -> Iterator[str]:
    """Serve an ASGI app as ``serve`` does, on a free loopback port; yields its base URL."""
    import uvicorn

    from keyfindings.service.server import server_config

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    config = server_config(app, host="127.0.0.1", port=port, log_level="error", **options)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    wait_until(lambda: server.started or not thread.is_alive())
    if not server.started:
        raise RuntimeError("the test server did not start")
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


@pytest.fixture
def serve(make_summarizer: Any) -> Iterator[Any]:
    """Start the app as ``serve`` does, with service and access options; yields a client."""
    from keyfindings.service import FindingsService
    from keyfindings.service.app import AccessPolicy, create_app

    stack: list[Any] = []

    def start(*, catalogue: Any = None, max_pending: int = 32, **access: Any) -> Any:
        header_timeout_s = access.pop("header_timeout_s", 10.0)
        service = FindingsService(
            make_summarizer(timeout=10.0), max_pending=max_pending, catalogue=catalogue
        )
        app = create_app(service, access=AccessPolicy(**access))
        context = running(app, header_timeout_s=header_timeout_s)
        client = httpx2.Client(base_url=context.__enter__(), timeout=30)
        stack.append((service, context, client))
        return client

    yield start
    for service, context, client in stack:
        client.close()
        context.__exit__(None, None, None)
        service.close()


@pytest.fixture(scope="session")
def postgres() -> Iterator[Any]:
    """A real PostgreSQL server for the whole session (see tests/postgres.py)."""
    from tests.postgres import PostgresServer

    server = PostgresServer.start()
    yield server
    server.stop()


@pytest.fixture(params=["diskcache", "postgres"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Any]:
    """Each store engine in turn: the same behaviour is expected of both."""
    from keyfindings.store import open_store

    if request.param == "diskcache":
        opened = open_store(tmp_path / "results")
    else:
        server = request.getfixturevalue("postgres")
        opened = open_store(server.create_database(f"kf_{uuid.uuid4().hex[:12]}"))
    yield opened
    opened.close()
