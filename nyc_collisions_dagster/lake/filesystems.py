"""Where the lake's files live: a local folder, or S3 with the one retry policy of every request.

`FileSystem.from_uri` resolves what an S3 URL needs (AWS_ENDPOINT_URL_S3 or AWS_ENDPOINT_URL, the
bucket's region, the URL's own options) but takes no retry strategy; the filesystem it returns is
rebuilt from its options, as unpickling does, with this one.
"""

import os

import pyarrow.fs as pa_fs

# Attempts per S3 request, the first included. The AWS SDK's standard strategy retries throttling
# (503 SlowDown), 5xx answers and cut connections, backing off exponentially with jitter: five
# attempts ride out about 15 s of refusals (ten, over a minute). Past them the day fails.
S3_ATTEMPTS = 5


def filesystem(url: str, s3_attempts: int = S3_ATTEMPTS) -> tuple[pa_fs.FileSystem, str]:
    """The filesystem of a folder or URL, and the path of its root in it."""
    if url.startswith("s3://"):
        # Delayed open makes a small object one PutObject instead of a three-call multipart.
        sep = "&" if "?" in url else "?"
        s3, root = pa_fs.FileSystem.from_uri(f"{url}{sep}allow_delayed_open=true")
        return _with_retries(s3, s3_attempts), root
    if "://" in url:
        return pa_fs.FileSystem.from_uri(url)
    return pa_fs.LocalFileSystem(), os.path.abspath(url)


def _with_retries(s3: pa_fs.FileSystem, attempts: int) -> pa_fs.S3FileSystem:
    _, (options,) = s3.__reduce__()
    if not options.get("proxy_options", {}).get("host"):
        options.pop("proxy_options", None)  # none set: an empty one is not taken back
    strategy = pa_fs.AwsStandardS3RetryStrategy(max_attempts=attempts)
    return pa_fs.S3FileSystem(**options, retry_strategy=strategy)
