package storetest

import (
	"os"
	"testing"
)

// Environment variables naming the S3 server for tests.
const (
	EnvS3Endpoint  = "DML_TEST_S3_ENDPOINT" // host:port, plain HTTP
	EnvS3AccessKey = "DML_TEST_S3_ACCESS_KEY"
	EnvS3SecretKey = "DML_TEST_S3_SECRET_KEY"
)

// S3FromEnv returns the S3 server tests should run against. Without
// DML_TEST_S3_ENDPOINT the test is skipped, unless CI is set: there it
// fails, because a CI run that silently skips the real-S3 tests proves
// nothing about S3.
func S3FromEnv(t testing.TB) (endpoint, accessKey, secretKey string) {
	t.Helper()
	endpoint = os.Getenv(EnvS3Endpoint)
	if endpoint == "" {
		if os.Getenv("CI") != "" {
			t.Fatalf("%s is not set: CI must run the S3 tests against a real S3 server", EnvS3Endpoint)
		}
		t.Skipf("%s is not set; set it (and %s, %s) to run the S3 tests", EnvS3Endpoint, EnvS3AccessKey, EnvS3SecretKey)
	}
	return endpoint, os.Getenv(EnvS3AccessKey), os.Getenv(EnvS3SecretKey)
}
