FROM python:3.12-slim
WORKDIR /app
COPY pyproject.toml README.md ./
COPY scaler ./scaler
COPY forecasting ./forecasting
RUN pip install --no-cache-dir . && useradd --uid 65532 --no-create-home prescaler
USER 65532
EXPOSE 9090 8080
ENTRYPOINT ["prescaler"]
CMD ["serve"]
