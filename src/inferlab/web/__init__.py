"""The workbench: a web application (FastAPI) over the store and the run lifecycle of inferlab.api, with its
pages served by the same process and every script and style shipped in the package."""
