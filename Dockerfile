# syntax=docker/dockerfile:1
# The smsgw image: one `smsgw` command; compose picks the subcommand (gateway, worker,
# smsc-sim) and owns the health checks, so the image declares none.
#
# Two stages: the first installs smsgw into a virtualenv, the second copies only that
# virtualenv, so the runtime image carries no source tree, build backend or pip cache.

FROM python:3.11-slim AS build
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python -m venv /opt/smsgw
WORKDIR /src
COPY pyproject.toml README.md ./
COPY gateway ./gateway
COPY worker ./worker
# Runtime dependencies only: the dev and test extras stay out of the image.
RUN /opt/smsgw/bin/pip install .

FROM python:3.11-slim
ENV PATH=/opt/smsgw/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1
# A fixed numeric uid/gid, so orchestrators can verify "not root" without reading /etc/passwd.
RUN groupadd --system --gid 10001 smsgw \
 && useradd --system --uid 10001 --gid smsgw --no-create-home --home-dir /nonexistent \
    --shell /usr/sbin/nologin smsgw
COPY --from=build /opt/smsgw /opt/smsgw
USER 10001:10001
# gateway HTTP, worker health, simulator SMPP
EXPOSE 8080 8081 2775
ENTRYPOINT ["smsgw"]
CMD ["gateway", "--host", "0.0.0.0", "--port", "8080"]
