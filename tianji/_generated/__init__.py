"""Files rendered by `python -m codegen` from tianji's Structs and shipped specs.

Do not edit: change the source (the Structs, routes.yaml, providers.yaml) and
regenerate. `python -m codegen --check` tells whether these files are fresh.
"""
