// Static checks of deploy/ and the Dockerfile, no server needed: every YAML/JSON file parses,
// dashboards and alerts name only metrics and labels server/metrics.h documents, manifests are
// wired consistently (deploy/check_deploy.py); promtool accepts the rules and config and the
// alert unit tests pass; nginx accepts the rendered gRPC config.
//
// Each check is skipped (with the reason) only when its tool is not installed: python3 with
// PyYAML, promtool, nginx (tools/install-deps.sh --extra installs them all).
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "testing/recd_process.h"
#include "testing/temp_dir.h"
#include "tests/ops_support.h"

namespace recd {
namespace {

using ::recd::testing::RunCommand;
using ::recd::testing::TempDir;
using ::recd::testing::ops::FindProgram;
using ::recd::testing::ops::FindPythonWithYaml;
using ::recd::testing::ops::SourceDir;
using ::recd::testing::ops::WriteFile;
using ::testing::HasSubstr;

TEST(OpsDeployTest, DeployFilesAreConsistentWithTheMetrics) {
  const std::string python = FindPythonWithYaml();
  if (python.empty()) GTEST_SKIP() << "no python3 with PyYAML (apt-get install python3-yaml)";
  std::vector<std::string> argv = {python, SourceDir() + "/deploy/check_deploy.py", "--root=" + SourceDir()};
  // With promtool, the alert unit tests run and every dashboard query is parsed as PromQL.
  const std::string promtool = FindProgram("promtool");
  if (!promtool.empty()) argv.push_back("--promtool=" + promtool);
  const testing::CommandResult result = RunCommand(argv);
  EXPECT_EQ(result.exit_code, 0) << result.output;
  EXPECT_THAT(result.output, HasSubstr("check_deploy: ok"));
  if (promtool.empty()) GTEST_SKIP() << "promtool not installed: alert unit tests and PromQL parsing not run";
}

TEST(OpsDeployTest, PromtoolAcceptsRulesAndConfig) {
  const std::string promtool = FindProgram("promtool");
  if (promtool.empty()) GTEST_SKIP() << "promtool not installed (apt-get install prometheus)";
  const std::string deploy = SourceDir() + "/deploy/prometheus";
  testing::CommandResult rules = RunCommand({promtool, "check", "rules", deploy + "/alerts.yml"});
  EXPECT_EQ(rules.exit_code, 0) << rules.output;
  EXPECT_THAT(rules.output, HasSubstr("SUCCESS"));
  // The compose config as shipped (its rule file is found relative to it).
  testing::CommandResult config = RunCommand({promtool, "check", "config", deploy + "/prometheus.yml"});
  EXPECT_EQ(config.exit_code, 0) << config.output;
  EXPECT_THAT(config.output, HasSubstr("1 rule files found"));
}

TEST(OpsDeployTest, NginxAcceptsTheRenderedConfig) {
  const std::string nginx = FindProgram("nginx");
  if (nginx.empty()) GTEST_SKIP() << "nginx not installed (apt-get install nginx)";
  TempDir dir;
  const std::string render = SourceDir() + "/deploy/nginx/render.sh";
  // Missing arguments are refused.
  EXPECT_EQ(RunCommand({"/bin/bash", render, "--listen=127.0.0.1:1"}).exit_code, 2);
  testing::CommandResult rendered =
      RunCommand({"/bin/bash", render, "--listen=127.0.0.1:1", "--primary=10.0.0.1:50051",
                  "--replica=10.0.0.2:50051", "--replica=10.0.0.3:50051", "--access-log=off"});
  ASSERT_EQ(rendered.exit_code, 0) << rendered.output;
  EXPECT_THAT(rendered.output, HasSubstr("server 10.0.0.3:50051 max_fails=1 fail_timeout=10s;"));
  EXPECT_THAT(rendered.output, HasSubstr("grpc_next_upstream error timeout non_idempotent;"));
  EXPECT_THAT(rendered.output, ::testing::Not(HasSubstr("@")));  // every placeholder filled
  ASSERT_TRUE(WriteFile(dir.Sub("recd.conf"), rendered.output).ok());
  ASSERT_TRUE(WriteFile(dir.Sub("nginx.conf"),
                        absl::StrCat("pid ", dir.Sub("nginx.pid"), ";\nevents {}\nhttp {\n  include ",
                                     dir.Sub("recd.conf"), ";\n}\n"))
                  .ok());
  testing::CommandResult syntax =
      RunCommand({nginx, "-t", "-c", dir.Sub("nginx.conf"), "-p", dir.path() + "/", "-e", dir.Sub("error.log")});
  EXPECT_EQ(syntax.exit_code, 0) << syntax.output;
  EXPECT_THAT(syntax.output, HasSubstr("test is successful"));
}

}  // namespace
}  // namespace recd
