"""The floor: the least a FastAPI function on Lambda can be. One route, no I/O, no settings.

Every function's figures are ratios to this one's, measured in the same run.
"""

from fastapi import FastAPI
from mangum import Mangum

app = FastAPI(docs_url=None, redoc_url=None, openapi_url=None)


@app.get("/hello")
async def hello() -> dict[str, str]:
    return {"message": "hello"}


handler = Mangum(app, lifespan="off")
