// client/mount/request_reader_test.cc: RequestReader gives libfuse each
// request, a WRITE without its data, and that data to the WRITE operation
// on the same thread: a large WRITE's in the buffer read into, a small
// one's copied.
#include "client/mount/request_reader.h"

#include <linux/fuse.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "gtest/gtest.h"

namespace txbuf::client::mount {
namespace {

constexpr size_t kLen = 16 << 10;  // the read buffer (max_write + a page)
constexpr size_t kHeaders = sizeof(fuse_in_header) + sizeof(fuse_write_in);

// A request as the kernel sends it: headers, then `data`.
std::string Request(uint32_t opcode, const std::string& data) {
  fuse_in_header in{};
  in.len = static_cast<uint32_t>(kHeaders + data.size());
  in.opcode = opcode;
  in.unique = 42;
  in.nodeid = 7;
  fuse_write_in w{};
  w.offset = 4096;
  w.size = static_cast<uint32_t>(data.size());
  std::string r(reinterpret_cast<const char*>(&in), sizeof(in));
  r.append(reinterpret_cast<const char*>(&w), sizeof(w));
  return r + data;
}

std::string Pattern(size_t n, char seed) {
  std::string s(n, '\0');
  for (size_t i = 0; i < n; ++i) s[i] = static_cast<char>(seed + i * 7);
  return s;
}

// A pipe holding one request at a time (a read(2) of it gets it whole, as
// from /dev/fuse).
class Device {
 public:
  Device() { EXPECT_EQ(pipe(fds_), 0); }
  ~Device() {
    close(fds_[0]);
    close(fds_[1]);
  }
  void Send(const std::string& request) {
    ASSERT_EQ(write(fds_[1], request.data(), request.size()),
              static_cast<ssize_t>(request.size()));
  }
  int fd() const { return fds_[0]; }

 private:
  int fds_[2] = {-1, -1};
};

TEST(RequestReaderTest, ALargeWritesDataIsTakenNotCopied) {
  auto reader = std::make_shared<RequestReader>(2);
  Device dev;
  const std::string data = Pattern(kLen / 2, 'a');
  const std::string request = Request(FUSE_WRITE, data);
  dev.Send(request);
  std::vector<char> libfuse(kLen, '\x5a');
  ASSERT_EQ(reader->Read(dev.fd(), libfuse.data(), kLen),
            static_cast<ssize_t>(request.size()));
  // The headers reach libfuse; the data's place is left as it was.
  EXPECT_EQ(std::memcmp(libfuse.data(), request.data(), kHeaders), 0);
  EXPECT_EQ(libfuse[kHeaders], '\x5a');
  EXPECT_EQ(libfuse[request.size() - 1], '\x5a');
  std::optional<WriteBytes> taken = reader->TakeWriteData();
  ASSERT_TRUE(taken.has_value());
  EXPECT_EQ(taken->view, data);
  EXPECT_EQ(taken->held, kLen);  // the request's buffer
  // Once only.
  EXPECT_FALSE(reader->TakeWriteData());

  // The next request is read into another buffer: the taken data stay.
  const std::string data2 = Pattern(kLen - kHeaders - 100, 'q');
  dev.Send(Request(FUSE_WRITE, data2));
  ASSERT_GT(reader->Read(dev.fd(), libfuse.data(), kLen), 0);
  std::optional<WriteBytes> taken2 = reader->TakeWriteData();
  ASSERT_TRUE(taken2.has_value());
  EXPECT_EQ(taken2->view, data2);
  EXPECT_EQ(taken->view, data);
  EXPECT_NE(taken->view.data(), taken2->view.data());
}

TEST(RequestReaderTest, ASmallWritesDataIsCopiedOutOfTheRequest) {
  auto reader = std::make_shared<RequestReader>(2);
  Device dev;
  std::vector<char> libfuse(kLen, '\x5a');
  const std::string data = Pattern(kLen / 2 - 1, 'b');
  const std::string small = Request(FUSE_WRITE, data);
  dev.Send(small);
  ASSERT_EQ(reader->Read(dev.fd(), libfuse.data(), kLen),
            static_cast<ssize_t>(small.size()));
  EXPECT_EQ(std::memcmp(libfuse.data(), small.data(), kHeaders), 0);
  EXPECT_EQ(libfuse[kHeaders], '\x5a');
  std::optional<WriteBytes> taken = reader->TakeWriteData();
  ASSERT_TRUE(taken.has_value());
  EXPECT_EQ(taken->view, data);
  EXPECT_EQ(taken->held, data.size());  // a copy of its own

  // The buffer read into serves the next request, the copy stays.
  const std::string other = Pattern(kLen / 4, 'z');
  dev.Send(Request(FUSE_WRITE, other));
  ASSERT_GT(reader->Read(dev.fd(), libfuse.data(), kLen), 0);
  EXPECT_EQ(taken->view, data);
  std::optional<WriteBytes> taken2 = reader->TakeWriteData();
  ASSERT_TRUE(taken2.has_value());
  EXPECT_EQ(taken2->view, other);
  // An empty WRITE.
  dev.Send(Request(FUSE_WRITE, ""));
  ASSERT_EQ(reader->Read(dev.fd(), libfuse.data(), kLen),
            static_cast<ssize_t>(kHeaders));
  taken = reader->TakeWriteData();
  ASSERT_TRUE(taken.has_value());
  EXPECT_EQ(taken->view, "");
}

TEST(RequestReaderTest, OtherRequestsReachLibfuseWhole) {
  auto reader = std::make_shared<RequestReader>(2);
  Device dev;
  std::vector<char> libfuse(kLen, '\0');
  // Not a WRITE, however large.
  const std::string setxattr = Request(FUSE_SETXATTR, Pattern(kLen / 2, 'c'));
  dev.Send(setxattr);
  ASSERT_EQ(reader->Read(dev.fd(), libfuse.data(), kLen),
            static_cast<ssize_t>(setxattr.size()));
  EXPECT_EQ(std::string(libfuse.data(), setxattr.size()), setxattr);
  EXPECT_FALSE(reader->TakeWriteData());

  // Shorter than a WRITE's headers.
  const std::string tiny = Request(FUSE_GETATTR, "").substr(0, 40);
  dev.Send(tiny);
  ASSERT_EQ(reader->Read(dev.fd(), libfuse.data(), kLen), 40);
  EXPECT_EQ(std::string(libfuse.data(), 40), tiny);
  EXPECT_FALSE(reader->TakeWriteData());

  // A WRITE whose sizes disagree with the request's (another layout):
  // whole, for libfuse to make of it what it does.
  std::string odd = Request(FUSE_WRITE, Pattern(kLen / 2, 'd'));
  fuse_write_in w;
  std::memcpy(&w, odd.data() + sizeof(fuse_in_header), sizeof(w));
  w.size -= 16;
  std::memcpy(odd.data() + sizeof(fuse_in_header), &w, sizeof(w));
  dev.Send(odd);
  ASSERT_EQ(reader->Read(dev.fd(), libfuse.data(), kLen),
            static_cast<ssize_t>(odd.size()));
  EXPECT_EQ(std::string(libfuse.data(), odd.size()), odd);
  EXPECT_FALSE(reader->TakeWriteData());
}

TEST(RequestReaderTest, OnlyTheReadingThreadAndReaderTakeItsRequest) {
  auto reader = std::make_shared<RequestReader>(2);
  Device dev;
  std::vector<char> libfuse(kLen, '\0');
  const std::string data = Pattern(kLen / 2, 'd');
  dev.Send(Request(FUSE_WRITE, data));
  ASSERT_GT(reader->Read(dev.fd(), libfuse.data(), kLen), 0);
  std::thread([&] { EXPECT_FALSE(reader->TakeWriteData()); }).join();
  auto other = std::make_shared<RequestReader>(2);
  EXPECT_FALSE(other->TakeWriteData());
  std::optional<WriteBytes> taken = reader->TakeWriteData();
  ASSERT_TRUE(taken.has_value());
  EXPECT_EQ(taken->view, data);
}

TEST(RequestReaderTest, AFailedReadReturnsMinusOneAndErrno) {
  auto reader = std::make_shared<RequestReader>(2);
  std::vector<char> libfuse(kLen);
  errno = 0;
  EXPECT_EQ(reader->Read(-1, libfuse.data(), kLen), -1);
  EXPECT_EQ(errno, EBADF);
  EXPECT_FALSE(reader->TakeWriteData());
}

TEST(RequestReaderTest, TakenBuffersOutliveTheReaderAndItsThread) {
  std::optional<WriteBytes> taken;
  const std::string data = Pattern(kLen / 2, 'e');
  {
    auto reader = std::make_shared<RequestReader>(1);
    Device dev;
    dev.Send(Request(FUSE_WRITE, data));
    std::thread([&] {
      std::vector<char> libfuse(kLen);
      ASSERT_GT(reader->Read(dev.fd(), libfuse.data(), kLen), 0);
      taken = reader->TakeWriteData();
    }).join();
  }
  ASSERT_TRUE(taken.has_value());
  EXPECT_EQ(taken->view, data);  // ASan: no use after free
}

}  // namespace
}  // namespace txbuf::client::mount
