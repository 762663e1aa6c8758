"""The verbs of facegate, one module per family, each a plain function over the engine.

Every function takes the `Facegate` engine and a `Caller` (who, for what purpose) and
goes through `engine.gate.run`, so each call is decided by the policy and leaves exactly
one audit entry. The CLI and the HTTP service call these and nothing lower.
"""
