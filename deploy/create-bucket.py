"""Create the artifact bucket on the object store if it is not there yet (run by docker-compose.yml)."""

import os
import sys
import time

import boto3
from botocore.exceptions import ClientError, EndpointConnectionError

bucket = os.environ["S3_BUCKET"]
s3 = boto3.client("s3", endpoint_url=os.environ["MLFLOW_S3_ENDPOINT_URL"])
for _attempt in range(30):
    try:
        s3.head_bucket(Bucket=bucket)
        print(f"bucket {bucket} exists")
        sys.exit(0)
    except ClientError as exc:
        if exc.response["Error"]["Code"] not in ("404", "NoSuchBucket"):
            raise
        s3.create_bucket(Bucket=bucket)
        print(f"created bucket {bucket}")
        sys.exit(0)
    except EndpointConnectionError:
        time.sleep(2)
sys.exit(f"the object store at {os.environ['MLFLOW_S3_ENDPOINT_URL']} did not answer")
