@format:qcow2 @spec:qcow2.backing_file
Feature: changing and folding qcow2 backing chains (qemu-img rebase and commit)
  rebase points an image at another backing file. By default it keeps what the guest sees,
  copying into the image whatever differs between the old and the new backing file; with -u
  it only rewrites the name. commit writes an image's own data into its backing file and then
  empties the image, so the guest still sees the same disk.

  Background:
    Given a 4 MiB qcow2 image "old"
    And 1 MiB of pattern 0x01 is written to "old" at offset 0
    And a 4 MiB qcow2 image "new"
    And 1 MiB of pattern 0x02 is written to "new" at offset 512 KiB
    And a qcow2 image "top" backed by "old"
    And 64 KiB of pattern 0x03 is written to "top" at offset 3 MiB

  @op:rebase
  Scenario: a safe rebase keeps the guest's view of the disk
    When image "top" is rebased onto "new"
    Then the rebase succeeds
    And the info of "top" reports "backing-filename" "new.qcow2"
    And the 1 MiB of "top" at offset 0 reads back as pattern 0x01
    And the 64 KiB of "top" at offset 3 MiB reads back as pattern 0x03
    And the 512 KiB of "top" at offset 1536 KiB reads back as zeroes
    And the oracle finds "top" consistent
    And the oracle reads the same guest bytes from "top"

  @op:rebase
  Scenario: an unsafe rebase only renames the backing file
    When image "top" is rebased onto "new" unsafely
    Then the rebase succeeds
    And the info of "top" reports "backing-filename" "new.qcow2"
    And the 512 KiB of "top" at offset 0 reads back as zeroes
    And the 1 MiB of "top" at offset 512 KiB reads back as pattern 0x02
    And the 64 KiB of "top" at offset 3 MiB reads back as pattern 0x03
    And the oracle finds "top" consistent

  @op:rebase
  Scenario: rebasing onto no backing file flattens the image
    When image "top" is rebased onto no backing file
    Then the rebase succeeds
    And the info of "top" reports a virtual size of 4 MiB
    And the 1 MiB of "top" at offset 0 reads back as pattern 0x01
    And the 64 KiB of "top" at offset 3 MiB reads back as pattern 0x03
    And the oracle finds "top" consistent
    And the oracle reads the same guest bytes from "top"

  @op:commit
  Scenario: commit moves the image's data into its backing file and empties the image
    When image "top" is committed
    Then the commit succeeds
    And the 64 KiB of "old" at offset 3 MiB reads back as pattern 0x03
    And the 1 MiB of "old" at offset 0 reads back as pattern 0x01
    And the 64 KiB of "top" at offset 3 MiB reads back as pattern 0x03
    And the oracle finds "old" consistent
    And the oracle finds "top" consistent
    And the oracle reads the same guest bytes from "old"

  @op:commit
  Scenario: commit -d leaves the image as it was
    When image "top" is committed keeping its data
    Then the commit succeeds
    And the 64 KiB of "old" at offset 3 MiB reads back as pattern 0x03
    And the 64 KiB of "top" at offset 3 MiB reads back as pattern 0x03
    And the oracle finds "top" consistent

  @op:commit
  Scenario: an image without a backing file cannot be committed
    When image "new" is committed
    Then the commit fails naming "backing"

  @op:commit
  Scenario: commit -b folds every layer above the named base into it
    Given a qcow2 image "mid" backed by "old"
    And 1 MiB of pattern 0x04 is written to "mid" at offset 1 MiB
    And a qcow2 image "leaf" backed by "mid"
    And 64 KiB of pattern 0x05 is written to "leaf" at offset 2 MiB
    When image "leaf" is committed into "old"
    Then the commit succeeds
    And the 1 MiB of "old" at offset 0 reads back as pattern 0x01
    And the 1 MiB of "old" at offset 1 MiB reads back as pattern 0x04
    And the 64 KiB of "old" at offset 2 MiB reads back as pattern 0x05
    And the oracle finds "old" consistent
    And the oracle reads the same guest bytes from "old"
