@format:qcow2 @op:snapshot @op:bitmap @spec:qcow2.snapshots @spec:qcow2.bitmaps @spec:qcow2.extended_l2 @spec:qcow2.compression_type @qemu-since:5.2
Feature: one qcow2 image with snapshots, subclusters, zstd and bitmaps, read alike by both sides
  The features of qcow2 live side by side in one file: compressed clusters (zstd), clusters
  split into subclusters (extended_l2) of which some are allocated, some read as zeroes and
  some are unallocated, an internal snapshot sharing clusters with the active layer, and a
  persistent bitmap that records the writes made after it was added. An image made by the
  implementation under test this way is checked clean by the other implementation, which
  reports the same info and map and reads the same guest bytes, both now and in the snapshot.

  Scenario: an image made with every on-disk feature is read and checked alike by the oracle
    Given a 4 MiB qcow2 image "src"
    And 192 KiB of pattern 0x31 is written to "src" at offset 0
    When the image is converted to qcow2 compressed with "extended_l2=on,compression_type=zstd"
    And 4 KiB of pattern 0x41 is written at offset 1032 KiB
    And 4 KiB at offset 1040 KiB is zeroed
    And bitmap "b0" is added
    And snapshot "s1" is created
    And 64 KiB of pattern 0x51 is written at offset 0
    Then the check counts some compressed clusters
    And the map shows 4 KiB at offset 1032 KiB as data
    And the map shows 4 KiB at offset 1036 KiB as unallocated
    And the map shows 4 KiB at offset 1040 KiB as zeroes
    And the map shows 4 KiB at offset 1040 KiB as allocated
    And bitmap "b0" marks exactly the 64 KiB at offset 0
    And the oracle finds the image consistent
    And the oracle reports the same info
    And the oracle reports the same map
    And the oracle reads the same guest bytes
    And the oracle lists the bitmaps "b0 auto 65536"
    And the oracle lists the snapshots "1 s1"
    And the oracle reads the same guest bytes in snapshot "s1" as "at-s1"
    And the 64 KiB of "at-s1" at offset 0 reads back as pattern 0x31
    And the 4 KiB of "at-s1" at offset 1032 KiB reads back as pattern 0x41

  Scenario: applying a snapshot is refused while the image has persistent bitmaps
    Given a 1 MiB qcow2 image
    And snapshot "s1" is created
    And bitmap "b0" is added
    And bitmap "b0" is disabled
    When applying snapshot "s1" is attempted
    Then the snapshot operation fails naming "dirty bitmaps"
