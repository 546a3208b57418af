"""Runs the SAM transform CloudFormation will run on the packaged template, offline (make check-package).

cfn-lint checks the SAM template itself; this expands it as AWS would (aws-sam-translator, the library
behind CloudFormation's AWS::Serverless-2016-10-31 transform) and writes the plain CloudFormation to
build/package/<stage>/transformed.json, which cfn-lint then checks too. The functions' CodeUri is
pointed at a placeholder S3 object first, as `make deploy` points it at the uploaded zip.

Runs in its own venv (build/venv-sam): aws-sam-translator pins a pydantic the app's pin excludes.
Run: python -m infra.sam_check build/package/dev/sam.json
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

from infra.deploy import with_code_location

PLACEHOLDER_BUCKET = "stepflow-deploy-123456789012-us-east-1"
PLACEHOLDER_KEY = "stepflow/deployment.zip"


class _NoManagedPolicies:
    """The translator asks IAM for managed policy ARNs only for SAM `Policies`, which the template has none of."""

    def load(self) -> dict[str, str]:
        return {}


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("usage: python -m infra.sam_check build/package/<stage>/sam.json", file=sys.stderr)
        return 2
    source = Path(args[0])
    os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")  # the translator needs a region, never a call
    from samtranslator.public.exceptions import InvalidDocumentException
    from samtranslator.translator.transform import transform

    template = with_code_location(json.loads(source.read_text(encoding="utf-8")), PLACEHOLDER_BUCKET, PLACEHOLDER_KEY)
    try:
        expanded = transform(template, {}, _NoManagedPolicies())
    except InvalidDocumentException as exc:
        for cause in exc.causes:
            print(f"SAM transform: {cause.message}", file=sys.stderr)
        return 1
    target = source.with_name("transformed.json")
    target.write_text(json.dumps(expanded, indent=1) + "\n", encoding="utf-8")
    kinds = sorted({resource["Type"] for resource in expanded["Resources"].values()})
    print(f"SAM transform: {source} -> {target.name}: {len(expanded['Resources'])} resources ({', '.join(kinds)})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
