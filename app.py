#!/usr/bin/env python3
"""Demo app: `cdk synth` exports a small demo dataset; `-c dataset_arn=arn:...` exports yours;
`-c export_schedule="cron(0 2 * * ? *)"` also exports it on that schedule."""

from aws_cdk import App

from demo.demo_stack import DemoStack


def build(app: App) -> DemoStack:
    return DemoStack(
        app,
        "PersonalizeExportDemo",
        dataset_arn=app.node.try_get_context("dataset_arn"),
        export_schedule=app.node.try_get_context("export_schedule"),
    )


if __name__ == "__main__":
    app = App()
    build(app)
    app.synth()
