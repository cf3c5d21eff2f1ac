import os

# An Output used where a string is expected must fail the test, not become a warning text.
os.environ["PULUMI_ERROR_OUTPUT_STRING"] = "true"
