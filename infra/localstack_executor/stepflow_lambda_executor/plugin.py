"""Registers the `process` executor in LocalStack's plugin namespace (LAMBDA_RUNTIME_EXECUTOR=process)."""

from localstack.services.lambda_.invocation.plugins import RuntimeExecutorPlugin


class ProcessRuntimeExecutorPlugin(RuntimeExecutorPlugin):
    name = "process"

    def load(self, *args, **kwargs):
        # Imported on use, like LocalStack's own docker plugin: loading the plugin index stays cheap.
        from stepflow_lambda_executor.executor import ProcessRuntimeExecutor

        return ProcessRuntimeExecutor
