@format:qcow2 @op:snapshot @spec:qcow2.snapshots
Feature: qcow2 internal snapshots
  qcow2 supports multiple VM snapshots inside the image file (qemu-img snapshot: -c creates,
  -l lists, -a applies, -d deletes). A snapshot keeps the guest bytes of its moment; later
  writes copy the clusters it shares with the active disk first, applying it brings its bytes
  (and its virtual size) back, and deleting it frees what only it held. The oracle checks
  the images, and snapshots made by one implementation are used by the other.

  Scenario: snapshots get increasing IDs and are listed; applying one brings back its bytes and size
    Given a 4 MiB qcow2 image
    And 128 KiB of pattern 0x11 is written at offset 0
    And snapshot "first" is created
    And the image is resized to "8M"
    And 128 KiB of pattern 0x22 is written at offset 64 KiB
    And snapshot "second" is created
    Then the image info lists the snapshots "1 first, 2 second"
    And the snapshot list shows the snapshots "1 first, 2 second"
    And the oracle lists the snapshots "1 first, 2 second"
    When snapshot "1" is applied
    Then the image info reports a virtual size of 4 MiB
    And the 128 KiB at offset 0 reads back as pattern 0x11
    And the check reports no corruption
    And the oracle finds the image consistent
    And the oracle reads 64 KiB at offset 128 KiB as pattern 0x00

  Scenario: a snapshot made by the oracle survives the implementation's writes and is deleted cleanly
    Given a 4 MiB qcow2 image created with "cluster_size=4096"
    And 64 KiB of pattern 0x33 is written at offset 0
    And the oracle creates snapshot "theirs"
    When 4 KiB of pattern 0x44 is written at offset 8 KiB
    Then the oracle finds the image consistent
    And the oracle reads 4 KiB at offset 8 KiB as pattern 0x44
    When the oracle applies snapshot "theirs"
    Then the oracle reads 64 KiB at offset 0 as pattern 0x33
    When 64 KiB of pattern 0x55 is written at offset 0
    And snapshot "theirs" is deleted
    Then the check reports no corruption
    And the oracle finds the image consistent
    And the oracle lists the snapshots ""
    And the oracle reads 64 KiB at offset 0 as pattern 0x55

  Scenario: an unknown snapshot is refused, and -d takes a name, not an ID
    Given a 4 MiB qcow2 image
    And snapshot "s1" is created
    When applying snapshot "nosuch" is attempted
    Then the snapshot operation fails naming "nosuch"
    When deleting snapshot "1" is attempted
    Then the snapshot operation fails naming "not found"
    And the image info lists the snapshots "1 s1"

  @spec:qcow2.data_file
  Scenario: an image with an external data file cannot take snapshots
    Given a 1 MiB qcow2 image created with "data_file=image.data"
    When creating snapshot "s" is attempted
    Then the snapshot operation fails naming "not supported"
    And the image info lists no snapshots

  Scenario: a snapshot whose L1 table is too large is refused on apply and found by check
    Given a qcow2 image with a snapshot whose L1 table is too large
    When applying snapshot "s1" is attempted
    Then the snapshot operation fails naming "L1 table"
    And the image file is unchanged
    And the check reports corruption
