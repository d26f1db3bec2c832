// Authentication (bearer tokens with scopes), TLS and mutual TLS against the real binary.
// Certificates are made at test time with the openssl command.
#include <fstream>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"
#include "testing/recd_process.h"
#include "testing/temp_dir.h"
#include "testing/workload.h"

namespace recd {
namespace {

using ::recd::testing::RecdProcess;
using ::recd::testing::RunCommand;
using ::recd::testing::TempDir;
using ::testing::HasSubstr;

constexpr char kReadToken[] = "read-token-abcdefghijklmnop";
constexpr char kWriteToken[] = "write-token-abcdefghijklmno";
constexpr char kAdminToken[] = "admin-token-abcdefghijklmno";

std::string ReadFile(const std::string& path) {
  std::ifstream in(path);
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

grpc::Status Log(recd::v1::Recommender::Stub& stub, const std::string& token) {
  grpc::ClientContext context;
  if (!token.empty()) context.AddMetadata("authorization", "Bearer " + token);
  recd::v1::LogInteractionsRequest request;
  auto* in = request.add_interactions();
  in->set_user_id("u1");
  in->set_item_id("i1");
  recd::v1::LogInteractionsResponse response;
  return stub.LogInteractions(&context, request, &response);
}

grpc::Status Train(recd::v1::Recommender::Stub& stub, const std::string& token) {
  grpc::ClientContext context;
  if (!token.empty()) context.AddMetadata("authorization", "Bearer " + token);
  recd::v1::TrainNowRequest request;
  request.set_wait(true);
  recd::v1::TrainNowResponse response;
  return stub.TrainNow(&context, request, &response);
}

grpc::Status Info(recd::v1::Recommender::Stub& stub, const std::string& token = "") {
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
  if (!token.empty()) context.AddMetadata("authorization", "Bearer " + token);
  recd::v1::GetModelInfoResponse response;
  return stub.GetModelInfo(&context, recd::v1::GetModelInfoRequest(), &response);
}

class AuthTest : public ::testing::Test {
 protected:
  void SetUp() override {
    tokens_ = dir_.Sub("tokens");
    std::ofstream(tokens_) << "# scopes token\nread " << kReadToken << "\nwrite " << kWriteToken << "\nadmin "
                           << kAdminToken << "\n";
  }
  TempDir dir_;
  std::string tokens_;
};

TEST_F(AuthTest, ScopesGateWritesAndAdminAndTokensStayOutOfLogs) {
  auto server = RecdProcess::Start(dir_.Sub("data"), {"--auth_tokens_file=" + tokens_, "--request_log_sample_rate=1"});
  ASSERT_TRUE(server.ok()) << server.status();
  auto stub = (*server)->NewStub();

  EXPECT_EQ(Log(*stub, "").error_code(), grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_EQ(Log(*stub, "not-a-known-token-at-all").error_code(), grpc::StatusCode::UNAUTHENTICATED);
  grpc::Status denied = Log(*stub, kReadToken);
  EXPECT_EQ(denied.error_code(), grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_THAT(denied.error_message(), HasSubstr("'write' scope"));
  EXPECT_TRUE(Log(*stub, kWriteToken).ok());
  EXPECT_TRUE(Log(*stub, kAdminToken).ok());
  EXPECT_EQ(Train(*stub, kWriteToken).error_code(), grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_TRUE(Train(*stub, kAdminToken).ok());
  EXPECT_TRUE(Info(*stub).ok());  // reads stay open by default

  // recctl passes --token (or $RECD_TOKEN).
  const std::string addr = "--server=" + (*server)->address();
  auto r = RunCommand({testing::RecctlBinary(), "log", "--user=u2", "--item=i2", addr});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_THAT(r.output, HasSubstr("UNAUTHENTICATED"));
  r = RunCommand({testing::RecctlBinary(), "log", "--user=u2", "--item=i2", addr, std::string("--token=") + kWriteToken});
  EXPECT_EQ(r.exit_code, 0) << r.output;

  EXPECT_EQ((*server)->Terminate(), 0);
  const std::string log = (*server)->ReadLog();
  EXPECT_THAT(log, HasSubstr("method=LogInteractions code=permission_denied"));  // calls were logged...
  for (const char* token : {kReadToken, kWriteToken, kAdminToken, "not-a-known-token-at-all"}) {
    EXPECT_EQ(log.find(token), std::string::npos) << "token leaked into the log";  // ...tokens were not
  }
}

TEST_F(AuthTest, ReadsCanRequireATokenToo) {
  auto server = RecdProcess::Start(dir_.Sub("data"), {"--auth_tokens_file=" + tokens_, "--require_auth_for_reads"});
  ASSERT_TRUE(server.ok()) << server.status();
  auto stub = (*server)->NewStub();
  EXPECT_EQ(Info(*stub).error_code(), grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_TRUE(Info(*stub, kReadToken).ok());
  EXPECT_EQ((*server)->Terminate(), 0);
}

TEST_F(AuthTest, BadTokenFileIsAStartupError) {
  std::ofstream(dir_.Sub("bad")) << "superuser short\n";
  auto server = RecdProcess::Start(dir_.Sub("data"), {"--auth_tokens_file=" + dir_.Sub("bad")});
  ASSERT_FALSE(server.ok());
  EXPECT_THAT(std::string(server.status().message()), HasSubstr("line 1: unknown scope 'superuser'"));
}

// A CA, a server certificate for 127.0.0.1/localhost, a client certificate from the same CA and
// one from an unrelated CA.
class TlsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (RunCommand({"/bin/sh", "-c", "command -v openssl"}).exit_code != 0) {
      GTEST_SKIP() << "openssl is not installed (tools/install-deps.sh installs it)";
    }
    const std::string d = dir_.path();
    const std::string script = absl::StrCat(
        "set -e; cd ", d, "; ",
        "openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=test-ca -keyout ca.key -out ca.pem; ",
        "openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=rogue-ca -keyout rogue.key -out rogue.pem; ",
        "printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\\n' > san.ext; ",
        "openssl req -newkey rsa:2048 -nodes -subj /CN=localhost -keyout server.key -out server.csr; ",
        "openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 2 -extfile san.ext -out server.pem; ",
        "openssl req -newkey rsa:2048 -nodes -subj /CN=client -keyout client.key -out client.csr; ",
        "openssl x509 -req -in client.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 2 -out client.pem; ",
        "openssl req -newkey rsa:2048 -nodes -subj /CN=intruder -keyout intruder.key -out intruder.csr; ",
        "openssl x509 -req -in intruder.csr -CA rogue.pem -CAkey rogue.key -CAcreateserial -days 2 -out intruder.pem");
    auto r = RunCommand({"/bin/sh", "-c", script});
    ASSERT_EQ(r.exit_code, 0) << r.output;
  }

  std::unique_ptr<recd::v1::Recommender::Stub> TlsStub(const RecdProcess& server, const std::string& client = "") {
    grpc::SslCredentialsOptions ssl;
    ssl.pem_root_certs = ReadFile(dir_.Sub("ca.pem"));
    if (!client.empty()) {
      ssl.pem_cert_chain = ReadFile(dir_.Sub(client + ".pem"));
      ssl.pem_private_key = ReadFile(dir_.Sub(client + ".key"));
    }
    grpc::ChannelArguments args;
    args.SetInt("grpc.use_local_subchannel_pool", 1);
    return recd::v1::Recommender::NewStub(grpc::CreateCustomChannel(server.address(), grpc::SslCredentials(ssl), args));
  }

  TempDir dir_;
};

TEST_F(TlsTest, ServerCertificateAndPlaintextRefused) {
  auto server = RecdProcess::Start(dir_.Sub("data"),
                                   {"--tls_cert=" + dir_.Sub("server.pem"), "--tls_key=" + dir_.Sub("server.key")});
  ASSERT_TRUE(server.ok()) << server.status();
  EXPECT_TRUE(Info(*TlsStub(**server)).ok());
  EXPECT_EQ(Info(*(*server)->NewStub()).error_code(), grpc::StatusCode::UNAVAILABLE);  // plaintext
  auto r = RunCommand({testing::RecctlBinary(), "health", "--server=" + (*server)->address(),
                       "--tls_ca=" + dir_.Sub("ca.pem")});
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_EQ((*server)->Terminate(), 0);
}

TEST_F(TlsTest, MutualTlsNeedsAClientCertificateFromTheCa) {
  auto server = RecdProcess::Start(dir_.Sub("data"), {"--tls_cert=" + dir_.Sub("server.pem"),
                                                      "--tls_key=" + dir_.Sub("server.key"),
                                                      "--tls_client_ca=" + dir_.Sub("ca.pem")});
  ASSERT_TRUE(server.ok()) << server.status();
  EXPECT_TRUE(Info(*TlsStub(**server, "client")).ok());
  EXPECT_NE(Info(*TlsStub(**server)).error_code(), grpc::StatusCode::OK);              // no client cert
  EXPECT_NE(Info(*TlsStub(**server, "intruder")).error_code(), grpc::StatusCode::OK);  // wrong CA
  EXPECT_EQ((*server)->Terminate(), 0);
}

TEST_F(TlsTest, MismatchedKeyIsAStartupError) {
  auto server = RecdProcess::Start(dir_.Sub("data"),
                                   {"--tls_cert=" + dir_.Sub("server.pem"), "--tls_key=" + dir_.Sub("client.key")});
  ASSERT_FALSE(server.ok());
  EXPECT_THAT(std::string(server.status().message()), HasSubstr("--tls_cert/--tls_key"));
}

}  // namespace
}  // namespace recd
