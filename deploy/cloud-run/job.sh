#!/usr/bin/env bash
# friendscrape on Cloud Run Jobs: one job, one task per partition. The task with
# CLOUD_RUN_TASK_INDEX=0 runs partition 1, index 9 runs partition 10 (--partition auto).
#
# Before running (see docs/deploying.md): plan the partitions once with
#   friendscrape partitions plan --count 10      (TASKS below must equal that count)
# and push the image to Artifact Registry. The job authenticates to BigQuery as its
# service account, so no key file is needed.
#
# Usage: PROJECT=my-project DATASET=friendscrape deploy/cloud-run/job.sh [create|update|execute]
set -euo pipefail

: "${PROJECT:?set PROJECT to the Google Cloud project}"
: "${DATASET:?set DATASET to the BigQuery dataset}"
REGION="${REGION:-us-central1}"
IMAGE="${IMAGE:-${REGION}-docker.pkg.dev/${PROJECT}/friendscrape/friendscrape:0.1.0}"
SERVICE_ACCOUNT="${SERVICE_ACCOUNT:-friendscrape@${PROJECT}.iam.gserviceaccount.com}"
JOB="${JOB:-friendscrape}"
TASKS="${TASKS:-10}"

action="${1:-create}"
case "$action" in
  create|update)
    # --task-timeout: a 360K-user partition needs days at the default concurrency (see
    # docs/deploying.md); 168h is Cloud Run's maximum. A retried task resumes where the
    # last one stopped: users with a result are not collected again.
    gcloud run jobs "$action" "$JOB" \
      --project "$PROJECT" \
      --region "$REGION" \
      --image "$IMAGE" \
      --service-account "$SERVICE_ACCOUNT" \
      --tasks "$TASKS" \
      --parallelism "$TASKS" \
      --max-retries 3 \
      --task-timeout 168h \
      --memory 512Mi \
      --cpu 1 \
      --set-env-vars "FRIENDSCRAPE_STORE=bigquery://${PROJECT}/${DATASET},FRIENDSCRAPE_LOG_FORMAT=json" \
      --args=run,--partition,auto
    ;;
  execute)
    gcloud run jobs execute "$JOB" --project "$PROJECT" --region "$REGION"
    ;;
  *)
    echo "usage: $0 [create|update|execute]" >&2
    exit 2
    ;;
esac
