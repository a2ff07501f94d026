"""``bgekit data``: validate, convert, split books into passages, make training pairs."""

from __future__ import annotations

import json

import click

from bgekit.commands.params import MODEL_DIR
from bgekit.errors import BgekitError

ENCODING_HELP = "Text encoding (auto: BOM, UTF-8, UTF-16, GB18030/GBK); e.g. gb18030, utf-16."


def counted(n: int, noun: str, plural: str | None = None) -> str:
    """``1 row``, ``2 rows``: a count with its noun in the right number."""
    return f"{n} {noun if n == 1 else plural or noun + 's'}"


def line_list(lines: list[int], more: bool) -> str:
    """``line 4``, ``lines 4, 9, ...``; empty when no line is known."""
    if not lines:
        return ""
    return f"{'line' if len(lines) == 1 and not more else 'lines'} {', '.join(map(str, lines))}{', ...' if more else ''}"


def _score_range(value: str | None) -> tuple[float, float] | None:
    if not value:
        return None
    try:
        low, high = (float(v) for v in value.split(":"))
    except ValueError:
        raise BgekitError(f"--score-range '{value}': write LOW:HIGH, e.g. 0:1") from None
    return low, high


@click.group()
def data() -> None:
    """Check, convert and prepare training data.

    \b
    Example:
      bgekit data validate train.jsonl
      bgekit data convert dureader.json train.jsonl --from auto
      bgekit data split book.txt --out passages.jsonl --chunk-size 300 --overlap 50
      bgekit data pairs passages.jsonl --out train.jsonl --method ict --negatives 7
    """


@data.command()
@click.argument("file", type=click.Path(exists=True))
@click.option("--format", "fmt", default="auto", show_default=True, help="Data format name, or auto to detect.")
@click.option("--encoding", default="auto", show_default=True, help=ENCODING_HELP)
@click.option("--tokenizer", type=MODEL_DIR,
              help="Tokenizer directory: warn about texts longer than --max-length tokens.")
@click.option("--max-length", type=int, default=None, help="Token limit for the length warning (default 512).")
@click.option("--score-range", help="Allowed teacher score range LOW:HIGH, e.g. 0:1.")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
def validate(file: str, fmt: str, encoding: str, tokenizer: str | None, max_length: int | None,
             score_range: str | None, as_json: bool) -> None:
    """Check every row of FILE; exit 1 when any row is invalid.

    \b
    Example:
      bgekit data validate train.jsonl --tokenizer ./bge-m3 --max-length 512
      bgekit data validate pairs.tsv --format pairs --json
    """
    from bgekit.data.validation import validate as run_validate

    report = run_validate(file, fmt=fmt, encoding=encoding, tokenizer=tokenizer, max_length=max_length,
                          score_range=_score_range(score_range))
    if as_json:
        click.echo(json.dumps(report.to_json(), ensure_ascii=False, indent=2))
    else:
        _print_report(report)
    if not report.ok:
        raise click.exceptions.Exit(1)


def _print_report(report) -> None:
    from rich.console import Console
    from rich.markup import escape

    console = Console(highlight=False)
    status = "[green]ok[/green]" if report.ok else "[red]invalid rows[/red]"
    console.print(f"[bold]{escape(report.path)}[/bold]  {status}")
    console.print(f"  format    {report.format}\n  encoding  {report.encoding}")
    console.print(f"  rows      {report.total} total, {report.valid} valid, {report.invalid} invalid")
    if report.errors:
        console.print("[red]invalid rows[/red]")
        for err in report.errors:
            console.print(f"  {escape(str(err))}")
        if report.invalid > len(report.errors):
            console.print(f"  ... and {report.invalid - len(report.errors)} more (use --json for all of them)")
    if report.warnings:
        console.print("[yellow]warnings[/yellow]")
        for w in report.warnings.values():
            where = line_list(w.lines, w.count > len(w.lines))
            console.print(f"  {w.count} {escape(w.message)}{f' ({where})' if where else ''}")


@data.command()
@click.argument("src", metavar="IN", type=click.Path(exists=True))
@click.argument("out", metavar="OUT", type=click.Path(dir_okay=False))
@click.option("--from", "fmt", default="auto", show_default=True, help="Input format name, or auto to detect.")
@click.option("--to", "to", default="jsonl", show_default=True, type=click.Choice(["jsonl"]), help="Output format.")
@click.option("--encoding", default="auto", show_default=True, help=ENCODING_HELP)
@click.option("--strict", is_flag=True, help="Stop at the first invalid row and write nothing.")
def convert(src: str, out: str, fmt: str, to: str, encoding: str, strict: bool) -> None:
    """Convert IN to canonical JSONL at OUT; rejected rows go to OUT.rejected.jsonl.

    \b
    Example:
      bgekit data convert msmarco_train.tsv train.jsonl
      bgekit data convert topics.xml train.jsonl --from trec-xml --strict
    """
    from bgekit.data.conversion import convert as run_convert

    report = run_convert(src, out, fmt=fmt, to=to, strict=strict, encoding=encoding)
    click.echo(f"{src} ({report.format}, {report.encoding}) -> {out}: {counted(report.written, 'row')} written, "
               f"{report.rejected} rejected")
    if report.rejected:
        click.echo(f"rejected rows with their reasons: {report.rejected_path}", err=True)


@data.command()
@click.argument("files", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False))
@click.option("--out", required=True, type=click.Path(dir_okay=False), help="Passages JSONL to write.")
@click.option("--chunk-size", type=int, required=True, help="Largest passage, in tokens (with --tokenizer) or characters.")
@click.option("--overlap", type=int, default=0, show_default=True, help="Overlap between neighbouring passages (same unit).")
@click.option("--by", type=click.Choice(["sentence", "paragraph", "window"]), default="sentence", show_default=True,
              help="Keep whole sentences, whole paragraphs, or cut fixed windows.")
@click.option("--tokenizer", type=MODEL_DIR, help="Measure sizes in this tokenizer's tokens.")
@click.option("--encoding", default="auto", show_default=True, help=ENCODING_HELP)
def split(files: tuple[str, ...], out: str, chunk_size: int, overlap: int, by: str, tokenizer: str | None,
          encoding: str) -> None:
    """Split books and documents (.txt, .md, .epub) into passages.

    Each passage records doc_id, chapter (from headings such as 第三回 or
    Chapter 3) and position.

    \b
    Example:
      bgekit data split hongloumeng.txt --out passages.jsonl --chunk-size 256 --overlap 32
      bgekit data split book.epub --out passages.jsonl --chunk-size 200 --tokenizer ./bge-m3
    """
    from bgekit.data.split import split_files

    report = split_files(files, out, chunk_size, overlap, by, tokenizer, encoding)
    click.echo(f"{counted(report.documents, 'document')}, {counted(report.chapters, 'chapter')} -> "
               f"{counted(report.passages, 'passage')} (sizes in {report.unit}) in {out}")


@data.command()
@click.argument("passages", type=click.Path(exists=True, dir_okay=False))
@click.option("--out", required=True, type=click.Path(dir_okay=False), help="Training JSONL to write.")
@click.option("--method", default="ict", show_default=True,
              help="ict (a sentence as query), title, generate (a query-writing plugin), or file:QUERIES.")
@click.option("--queries-per-passage", type=int, default=1, show_default=True)
@click.option("--negatives", type=int, default=7, show_default=True, help="BM25 hard negatives per query.")
@click.option("--pool", type=int, default=30, show_default=True, help="Sample negatives from this many top BM25 hits.")
@click.option("--exclude-window", type=int, default=2, show_default=True,
              help="Never take passages of the same document within this many positions as negatives.")
@click.option("--seed", type=int, default=42, show_default=True)
def pairs(passages: str, out: str, method: str, queries_per_passage: int, negatives: int, pool: int,
          exclude_window: int, seed: int) -> None:
    """Make training examples from PASSAGES (as written by `bgekit data split`).

    \b
    Example:
      bgekit data pairs passages.jsonl --out train.jsonl --method ict --negatives 7 --seed 1
      bgekit data pairs passages.jsonl --out train.jsonl --method file:queries.tsv
    """
    from bgekit.data.pairs import make_pairs

    report = make_pairs(passages, out, method, queries_per_passage, negatives, pool, exclude_window, seed)
    click.echo(f"{counted(report.passages, 'passage')} -> {counted(report.examples, 'example')} ({report.method}) "
               f"in {out}")
    if report.passages_without_query:
        click.echo(f"{report.passages_without_query} passage(s) gave no query "
                   f"(ict needs at least two sentences; title needs a title or chapter)")
    if report.without_negatives:
        click.echo(f"{report.without_negatives} example(s) found no BM25 negative outside the passage's neighbours")
