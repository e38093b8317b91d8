# Build and test entry points; see README.md.

GO ?= go
BIN := bin/customs

.PHONY: build run test

## build: compile ./bin/customs
build:
	$(GO) build -o $(BIN) ./cmd/customs

## run: build and start customs with embedded defaults (listens on :5000, data in ./customs-data;
##      extra flags via ARGS="--addr :5001")
run: build
	./$(BIN) serve $(ARGS)

## test: run all tests, installing what they need (scripts/test.sh)
test:
	scripts/test.sh
