//! The Python SDK (plugins/sdk-python) and its example, built with componentize-py.
