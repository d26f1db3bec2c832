// A fresh temporary folder, removed with everything in it when the object dies.
#ifndef RECD_TESTING_TEMP_DIR_H_
#define RECD_TESTING_TEMP_DIR_H_

#include <string>

namespace recd::testing {

class TempDir {
 public:
  TempDir();  // aborts the test binary if no folder can be made
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  const std::string& path() const { return path_; }
  // path() + "/" + name
  std::string Sub(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

}  // namespace recd::testing

#endif  // RECD_TESTING_TEMP_DIR_H_
