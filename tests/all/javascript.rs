//! The JavaScript SDK (plugins/sdk-js) and its example, built with componentize-js.
