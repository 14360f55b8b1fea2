"""Link, plan and build: YAML specs -> CompiledGateway -> Litestar app (see pipeline.py)."""
