"""``keyfindings`` command line: thin commands over the library.

Every anticipated failure ends as one line on stderr and a non-zero exit, never a traceback.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Callable, Sequence
from typing import Any

from keyfindings.cache import ResultCache
from keyfindings.config import ModelConfig, make_backend
from keyfindings.errors import InputError, KeyFindingsError
from keyfindings.loaders import iter_papers
from keyfindings.prompts import describe, list_prompts, load_prompt
from keyfindings.render import to_markdown
from keyfindings.summarizer import Summarizer

EXIT_ERROR = 1


def _add_model_options(parser: argparse.ArgumentParser) -> None:
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
    group.add_argument("--timeout", type=float, default=120.0, help="seconds per request")
    group.add_argument("--prompt", help="prompt NAME@vN (default: the backend's default)")
    cache = parser.add_argument_group("cache")
    cache.add_argument("--cache-dir", help="cache directory [env KEYFINDINGS_CACHE_DIR]")
    cache.add_argument("--no-cache", action="store_true", help="neither read nor write the cache")
    cache.add_argument("--refresh", action="store_true", help="ignore cached results, rewrite them")


def _model_config(args: argparse.Namespace) -> ModelConfig:
    return ModelConfig(
        backend=args.backend,
        base_url=args.base_url,
        model=args.model,
        api_key=args.api_key,
        model_path=args.model_path,
        timeout=args.timeout,
    )


def build_summarizer(args: argparse.Namespace, **kwargs: Any) -> Summarizer:
    """A Summarizer from the shared model and cache options."""
    config = _model_config(args)
    cache = None if args.no_cache else ResultCache(_results_dir(args.cache_dir))
    return Summarizer(
        make_backend(config),
        prompt=args.prompt or config.default_prompt(),
        cache=cache,
        use_cache=not args.no_cache,
        refresh=args.refresh,
        **kwargs,
    )


def _results_dir(cache_dir: str | None) -> str | None:
    return f"{cache_dir}/results" if cache_dir else None


def cmd_summarize(args: argparse.Namespace) -> int:
    """Summarise every paper in FILE; JSON (one Result per line) or Markdown."""
    fmt = args.format or ("markdown" if sys.stdout.isatty() else "json")
    summarizer = build_summarizer(args, on_invalid="raise" if args.strict else "flag")
    failed = flagged = 0
    for item in iter_papers(args.file):
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
        flagged += result.status == "flagged"
        text = to_markdown(result, item) if fmt == "markdown" else result.model_dump_json()
        print(text, flush=True)
    if flagged:
        print(f"keyfindings: {flagged} result(s) flagged: see their issues", file=sys.stderr)
    return EXIT_ERROR if failed else 0


def cmd_prompts(args: argparse.Namespace) -> int:
    """List prompt versions, or show one."""
    if args.action == "show":
        if not args.ref:
            raise KeyFindingsError("prompts show needs NAME@vN")
        prompt = load_prompt(args.ref)
        print(prompt.path.read_text(encoding="utf-8"), end="")
        return 0
    for prompt in list_prompts():
        info = describe(prompt)
        print(
            f"{info['ref']:<28} {info['answer_format']:<15} {info['sha256']}  {info['description']}"
        )
    return 0


def cmd_cache(args: argparse.Namespace) -> int:
    """Cache statistics, or clear all entries or one prompt version's."""
    cache = ResultCache(_results_dir(args.cache_dir))
    if args.action == "clear":
        removed = cache.clear(args.prompt)
        print(f"removed {removed} entries" + (f" of {args.prompt}" if args.prompt else ""))
    else:
        print(json.dumps(cache.stats(), indent=2))
    return 0


def cmd_models(args: argparse.Namespace) -> int:
    """What the embedded backend can use, and what the default is."""
    from keyfindings.models import describe_models

    print(describe_models())
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The argument parser; each subcommand's ``func`` does the work."""
    parser = argparse.ArgumentParser(
        prog="keyfindings",
        description="Grounded key findings (methodology, results, significance) from abstracts.",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log retries and progress")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser(
        "summarize",
        help="summarise the papers in a file",
        description="Input: PubMed XML, JSON, JSONL or CSV (or a directory).",
    )
    p.add_argument("file")
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

    p = sub.add_parser("prompts", help="list prompt versions or show one")
    p.add_argument("action", choices=["list", "show"], nargs="?", default="list")
    p.add_argument("ref", nargs="?", help="NAME@vN for show")
    p.set_defaults(func=cmd_prompts)

    p = sub.add_parser("cache", help="cache statistics or clearing")
    p.add_argument("action", choices=["stats", "clear"], nargs="?", default="stats")
    p.add_argument("--prompt", help="with clear: only this prompt version (NAME@vN)")
    p.add_argument("--cache-dir", help="cache directory [env KEYFINDINGS_CACHE_DIR]")
    p.set_defaults(func=cmd_cache)

    p = sub.add_parser("models", help="the embedded models and the default")
    p.set_defaults(func=cmd_models)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``keyfindings`` console script."""
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING, format="keyfindings: %(message)s"
    )
    func: Callable[[argparse.Namespace], int] = args.func
    try:
        return func(args)
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
