"""Rekognition's wire protocol (AWS JSON 1.1 with Signature Version 4) over facegate.

`dispatch` is the HTTP door at the service's base URL, `sigv4` checks signatures,
`rekognition` maps each AWS operation onto `facegate.operations`, `params` and `shapes`
read requests and write answers in the service model's shapes, and `errors` is the one
table from facegate's error codes to Rekognition's error types.
"""
