"""``parse-report``, ``describe`` and ``backbones``: the commands that read text and masks (no model)."""
from __future__ import annotations

import json
import os
import sys

from ..report import parse_report
from ..report.format import summarise
from .common import UserError


def _report_of_row(line: str):
    """``(report, id or None)`` of one JSON-lines manifest row; the report is a ``ValueError`` to
    report for its line when the row has none."""
    from ..io.jsonl import parse_json_object

    try:
        row = parse_json_object(line)
    except ValueError as exc:
        return exc, None
    if not isinstance(row.get("report"), str):
        return ValueError("a .jsonl line must be a JSON object with a 'report' text"), row.get("id")
    return row["report"], row.get("id")


def _reports_of_csv(path: str) -> list:
    """The ``(report, id or None)`` of each row of a ``.csv`` manifest, at its line (the header is
    line 1: ``None`` there, as for a skipped blank line)."""
    from ..io.rows import read_rows

    try:
        rows = read_rows(path)
    except ValueError as exc:
        raise UserError(str(exc)) from None
    if rows and "report" not in rows[0][1]:
        raise UserError(f"{path}: a .csv manifest needs a 'report' column (it has "
                        f"{', '.join(map(str, rows[0][1]))})")
    texts: list = [None] * (max((line for line, _ in rows), default=1))
    for line, row in rows:
        report = row.get("report")
        texts[line - 1] = ((report, row.get("id")) if isinstance(report, str) and report.strip()
                           else (ValueError("no report in this row"), row.get("id")))
    return texts


def _cmd_parse_report(args) -> int:
    """One report per line (or TEXT). A report that cannot be read (e.g. over the 200,000-character
    limit) gives one line on stderr and, in its place in the output, ``{"error": ..., "line": N}``
    (JSON) or ``line N: error: ...`` (text); the other reports are still read. Exit status: 0 when
    every report was read, 1 when one or more could not be, 2 for a usage error."""
    if (args.text is None) == (args.input is None):
        raise UserError("give either TEXT or --input FILE")
    colour = args.color == "always" or (args.color == "auto" and sys.stdout.isatty())
    if args.text == "-":  # as --input -: numbered lines, the same output
        args.text, args.input = None, "-"
    if args.text is not None:
        texts = [args.text]
    else:
        from ..io.jsonl import jsonl_lines
        from ..io.text import read_stdin_text, read_text

        raw = None  # the text of a file read line by line (a .csv manifest is read by rows)
        if args.input == "-":  # standard input, decoded as a file is
            raw = read_stdin_text()
        elif os.path.isdir(args.input):
            raise UserError(f"--input {args.input} is a folder: give a text, .jsonl or .csv file")
        elif not os.path.isfile(args.input):
            raise UserError(f"input file not found: {args.input}")
        elif args.input.lower().endswith(".csv"):  # a manifest: each row's "report" column
            texts = _reports_of_csv(args.input)
        else:
            raw = read_text(args.input)
        if raw is not None:
            texts = jsonl_lines(raw)  # a report per line; "\n" ends a line
            if texts and texts[-1] == "":
                texts.pop()  # the newline that ends the last line
        if args.input.lower().endswith(".jsonl"):  # a manifest: each row's "report"; blank lines skipped
            texts = [None if not line.strip() else _report_of_row(line) for line in texts]
    failed = 0
    for number, text in enumerate(texts, 1):
        if text is None:
            continue
        case_id = None
        if isinstance(text, tuple):  # a .jsonl row: (report or its error, id)
            text, case_id = text
        try:
            if isinstance(text, Exception):
                raise text
            report = parse_report(text)
        except (ValueError, TypeError) as exc:
            failed += 1
            where = f"line {number}" if args.input is not None else "report"
            message = " ".join(str(exc).split())
            print(f"medseg-r: {where}: {message}", file=sys.stderr)
            error = {"error": message}
            if args.input is not None:
                error["line"] = number
            if case_id is not None:
                error["id"] = case_id
            print(json.dumps(error) if args.json else f"{where}: error: {message}")
            continue
        if args.json:  # read from a file: each object says which line (and manifest id) it is
            where = {} if args.input is None else {"line": number}
            if case_id is not None:
                where["id"] = case_id
            print(json.dumps({**where, **report.to_dict()}, ensure_ascii=False))
        else:
            print(summarise(report, colour=colour))
    return 1 if failed else 0


def _cmd_describe(args) -> int:
    """One case (report text, or JSON with the measurements), a batch (``--manifest`` -> ``--out``
    JSONL that ``medseg-r train`` reads) or a data set (``--data DIR`` -> a described copy in
    ``--out``). Exit status: 0 every case described; 1 one or more cases of a batch could not be
    (one line each on stderr, the others written); 2 usage or input error (nothing written)."""
    from ..describe import DescribeError, describe_case, describe_dataset, describe_manifest

    if sum(x is not None for x in (args.image, args.manifest, args.data)) != 1:
        raise UserError("give one of --image IMG --mask MASK, --manifest FILE --out OUT.jsonl, "
                        "or --data DIR --out OUT_DIR")
    if args.seed < 0:
        raise UserError(f"--seed must be >= 0, got {args.seed}")
    if args.image is not None and args.out:
        raise UserError("--out is for --manifest and --data; with --image the report is printed "
                        "(--json for its JSON; redirect it to keep it)")
    if args.image is None and args.json:
        raise UserError("--json is for --image; --manifest and --data write JSON lines to --out")
    if args.data is not None and (args.target or args.organ):  # describe_dataset takes neither
        raise UserError("--target and --organ are for --image and --manifest; --data describes with "
                        "the data set's defaults")
    spacing = None
    if args.spacing:
        spacing = args.spacing[0] if len(args.spacing) == 1 else tuple(args.spacing)
    options = dict(domain=args.domain or "chest", orientation=args.orientation, style=args.style,
                   seed=args.seed, spacing=spacing)
    try:
        if args.image is not None:
            if args.mask is None:
                raise UserError("--image needs --mask MASK")
            result = describe_case(args.image, args.mask, target=args.target, organ=args.organ,
                                   **options)
        elif not args.out:
            raise UserError(f"{'--data' if args.data else '--manifest'} needs --out")
        elif args.data is not None:
            if not os.path.isfile(os.path.join(args.data, "manifest.jsonl")):
                raise UserError(f"{args.data}: no manifest.jsonl (a phantom or manifest folder)")
            summary = describe_dataset(args.data, args.out, style=args.style, seed=args.seed,
                                       domain=args.domain, spacing=spacing,
                                       progress=not args.quiet)
        else:
            summary = describe_manifest(args.manifest, args.out, target=args.target,
                                        organ=args.organ, progress=not args.quiet, **options)
    except DescribeError as exc:
        raise UserError(str(exc)) from None
    if args.image is None:
        print(f"wrote {summary['out']}: {summary['written']} described, "
              f"{summary['skipped']} already there, {len(summary['failed'])} failed")
        return 1 if summary["failed"] else 0
    if args.json:
        print(json.dumps(result.to_dict(), ensure_ascii=False))
    else:
        print(result.report.text)
        for note in result.notes:
            print(f"note: {note}", file=sys.stderr)
    return 0


def _cmd_backbones(args) -> int:
    from ..backbones import describe_backbones

    for name, text in describe_backbones().items():
        print(f"{name:<14}{text}")
    return 0


def add_parsers(sub) -> None:
    """Add the ``parse-report``, ``describe`` and ``backbones`` commands to the sub-parsers ``sub``."""
    p = sub.add_parser("parse-report", help="read a free-text report into structured priors",
                       description="Read free-text reports into structured priors (PRIORS.md). "
                       "A report that cannot be read is reported on stderr and as "
                       "{\"error\": ...} in the output; the others are still read.",
                       epilog="exit status: 0 every report read; 1 one or more could not be read; "
                       "2 usage error")
    p.add_argument("text", nargs="?", help="the report text ('-': reports from standard input, "
                                           "one per line)")
    p.add_argument("--input", help="a file with one report per line ('-': standard input), or a "
                                   ".jsonl or .csv manifest (each row's report, e.g. describe's "
                                   "output; a .csv row is numbered as a line with the header as "
                                   "line 1, whatever line breaks a quoted report holds)")
    p.add_argument("--json", action="store_true", help="print one JSON object per report (PRIORS.md)")
    p.add_argument("--color", choices=("auto", "always", "never"), default="auto",
                   help="highlight the evidence words (default auto: when printing to a terminal)")
    p.set_defaults(func=_cmd_parse_report)

    p = sub.add_parser("describe", help="describe the lesions of a mask as report text (priors)",
                       description="Describe the lesions of a mask as findings and report text "
                       "(one finding per connected component, or per label of a label mask; an "
                       "empty mask gives a negative report).",
                       epilog="exit status: 0 every case described; 1 one or more cases of a "
                       "batch failed (one line each on stderr); 2 usage or input error")
    p.add_argument("--image", help="PNG/JPEG/TIFF/BMP, NIfTI, a DICOM file or series folder")
    p.add_argument("--mask", help="mask on the same grid (binary or integer labels)")
    p.add_argument("--manifest", help="batch: .csv/.jsonl with image, mask [, id, split, tags, "
                                      "spacing]; paths relative to it")
    p.add_argument("--data", help="a folder with manifest.jsonl (e.g. the phantom): writes a copy "
                                  "with described reports to --out (images referenced, not copied)")
    p.add_argument("--out", help="batch output .jsonl (a manifest medseg-r train reads), or the "
                                 "folder for --data")
    p.add_argument("--domain", default=None,
                   choices=["chest", "abdomen", "breast", "brain", "colonoscopy", "image"],
                   help="default chest (--data: the data set's dataset.json domain, else chest)")
    p.add_argument("--orientation", default="radiological",
                   choices=["radiological", "neurological"],
                   help="which image side is the patient's right: radiological (default: the "
                        "left of the image) or neurological (the right)")
    p.add_argument("--style", default="radiology", choices=["radiology", "qata", "attribute"],
                   help="the sentences' style: radiology (default), qata (QaTa-COV19's short "
                        "phrases) or attribute (one attribute list per lesion)")
    p.add_argument("--seed", type=int, default=0, help="phrasing seed (batch: seed + row number)")
    p.add_argument("--spacing", type=float, nargs="+", metavar="MM",
                   help="mm per pixel (one number, or one per axis); files with an affine have it")
    p.add_argument("--target", help="finding noun (default per domain)")
    p.add_argument("--organ", help="--domain abdomen only: the organ the lesions lie in (liver, "
                                   "kidney, spleen, pancreas, adrenal, colon)")
    p.add_argument("--json", action="store_true", help="print the priors and measurements as JSON")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=_cmd_describe)

    p = sub.add_parser("backbones", help="list the registered SAM-family backbones",
                       description="List the registered SAM-family backbones with their image size, "
                       "encoder and where their weights come from.")
    p.set_defaults(func=_cmd_backbones)
