"""DCAT-AP 3.0.1 conformance of a DCAT document: validates it with pyshacl
against the SEMIC shapes shipped in tests/data/dcat-ap-3.0.1 (as
tests/dcat_testing.py loads them) and prints the number of violations, by
property and constraint, then adds them to bench/results/dcat_conformance.json.
A measurement, not a test (the test is tests/integration/test_dcat_conformance.py).

    .venv/bin/python bench/dcat_conformance.py catalog.ttl [--format turtle]
    curl -s http://127.0.0.1:5000/catalog.ttl > catalog.ttl   # a running portal
"""
from __future__ import annotations

import argparse
import collections
import json
import sys
from pathlib import Path

import rdflib

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
from dcat_testing import violations  # noqa: E402  (the shapes and the count the test uses)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("document")
    parser.add_argument("--format", default="turtle")
    parser.add_argument("--label", default="", help="a name for this measurement in the results file")
    args = parser.parse_args(argv)
    data = rdflib.Graph().parse(args.document, format=args.format)
    found = violations(data)
    kinds = collections.Counter((v["path"].rsplit("/", 1)[-1].rsplit("#", 1)[-1],
                                 v["constraint"].rsplit("#", 1)[-1]) for v in found)
    print(f"{args.document}: {len(found)} violations "
          f"({len(set(data.subjects(rdflib.RDF.type, rdflib.URIRef('http://www.w3.org/ns/dcat#Dataset'))))} datasets)")
    for (path, constraint), count in kinds.most_common():
        print(f"  {count:6d}  {path}  {constraint}")
    results = Path(__file__).resolve().parent / "results" / "dcat_conformance.json"
    previous = json.loads(results.read_text()) if results.exists() else {}
    previous[args.label or args.document] = {
        "violations": len(found), "by_path_and_constraint": {f"{p} {c}": n for (p, c), n in kinds.most_common()}}
    results.write_text(json.dumps(previous, ensure_ascii=False, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
