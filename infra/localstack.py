"""`make test-localstack`: starts LocalStack without Docker, runs the LocalStack tests against it, stops it.

The tests (tests/deploy/test_localstack*.py) deploy the packaged stage (build/package/dev: sam.json and
deployment.zip, from `make package`) through LocalStack's CloudFormation the way `make deploy` deploys to
AWS, then use the service over HTTP. boto3 reaches LocalStack through AWS_ENDPOINT_URL: no code of the app
knows about LocalStack. LocalStack itself (infra/localstack_server.py) runs in host mode from
build/venv-localstack, with its Lambda functions run by the `process` executor (infra/localstack_executor)
under --lambda-python, the Python that packaged them.

LOCALSTACK_ENDPOINT=http://host:4566 uses a LocalStack that is already running instead (its Lambda must
run python3.12 functions). Every run deploys under a stack and prefix of its own and deletes its stack,
so runs repeat against the same LocalStack.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from infra.localstack_server import ROOT, LocalStack, health

SERVICES = ("cloudformation", "s3", "iam", "sts", "lambda", "apigateway", "dynamodb", "stepfunctions", "events",
            "sqs", "logs")
TESTS = ("tests/deploy/test_localstack.py", "tests/deploy/test_localstack_executor.py")


def test_environment(url: str, disposable: bool) -> dict[str, str]:
    """The tests' environment: every boto3 client goes to LocalStack, with its test credentials only."""
    env = {key: value for key, value in os.environ.items()
           if not key.startswith("AWS_") or key in ("AWS_REGION", "AWS_DEFAULT_REGION")}
    region = env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION") or "us-east-1"
    env.update({
        "STEPFLOW_LOCALSTACK_ENDPOINT": url,
        "AWS_ENDPOINT_URL": url,
        "AWS_ACCESS_KEY_ID": "test",
        "AWS_SECRET_ACCESS_KEY": "test",
        "AWS_REGION": region,
        "AWS_DEFAULT_REGION": region,
        "STEPFLOW_LOCALSTACK_DISPOSABLE": "1" if disposable else "0",
    })
    return env


def stop_on_sigterm() -> None:
    """`kill` (or CI's timeout) still stops LocalStack: SIGTERM unwinds like Ctrl-C."""
    def interrupt(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, interrupt)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m infra.localstack", description=__doc__.splitlines()[0])
    parser.add_argument("--lambda-python", default=str(ROOT / "build" / "venv-deploy" / "bin" / "python"),
                        help="the interpreter the functions run on (the one that packaged them)")
    parser.add_argument("--lambda-packages", type=Path, default=ROOT / "build" / "localstack-lambda",
                        help="what the Lambda runtime provides besides the zip (boto3)")
    args, pytest_args = parser.parse_known_args(argv)
    stop_on_sigterm()
    began = time.monotonic()
    server: LocalStack | None = None
    external = os.environ.get("LOCALSTACK_ENDPOINT", "").rstrip("/")
    code = 1
    try:
        if external:
            document = health(external)
            if document is None:
                print(f"infra.localstack: nothing answers as LocalStack at LOCALSTACK_ENDPOINT={external}", file=sys.stderr)
                return 1
            url = external
        else:
            # Absolute: LocalStack starts the functions from folders of its own.
            server = LocalStack(os.path.abspath(args.lambda_python), args.lambda_packages.absolute())
            document = server.start()
            url = server.url
        services = document.get("services", {})
        states = ", ".join(f"{name}={services.get(name, 'absent')}" for name in SERVICES)
        print(f"infra.localstack: LocalStack {document.get('version', '?')} at {url}"
              f"{' (ours, started in %.1f s)' % (time.monotonic() - began) if server else ''}: {states}", flush=True)
        tested = time.monotonic()
        command = [sys.executable, "-m", "pytest", *TESTS, "-rs", *pytest_args]
        code = subprocess.call(command, cwd=ROOT, env=test_environment(url, disposable=server is not None))
        print(f"infra.localstack: tests took {time.monotonic() - tested:.1f} s", flush=True)
    except KeyboardInterrupt:
        code = 130
    finally:
        if server is not None:
            stopping = time.monotonic()
            server.stop()
            print(f"infra.localstack: LocalStack stopped in {time.monotonic() - stopping:.1f} s"
                  f"{'' if code == 0 else f'; its log: {server.log_path}'}")
    print(f"infra.localstack: {'passed' if code == 0 else 'FAILED'} in {time.monotonic() - began:.1f} s in all")
    return code


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
