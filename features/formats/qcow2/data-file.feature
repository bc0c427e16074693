@format:qcow2 @op:create @spec:qcow2.data_file @qemu-since:4.0
Feature: data_file keeps guest data in a separate file
  Not in the manual; qemu-img 7.2 offers an external data file (compat=1.1), and with
  data_file_raw=on that file stays a valid raw image of the disk.

  Scenario: guest data goes to the external data file
    Given a 64 MiB qcow2 image created with "data_file=image.data"
    When 1 MiB of pattern 0x5a is written at offset 8 MiB
    Then the image info reports format-specific "data-file" "image.data"
    And the 1 MiB at offset 8 MiB reads back as pattern 0x5a
    And the check reports no corruption
    And the oracle reads the same guest bytes

  Scenario: a relative data_file name is found beside the image, whatever the working directory
    # Neither the manual nor qcow2.txt says how a relative name is resolved; qbc reads it as
    # QEMU reads backing file names, against the image's directory. qemu 7.2 resolves it against
    # the working directory (expectations/qemu.json).
    Given a 64 MiB qcow2 image created with "data_file=image.data"
    When 1 MiB of pattern 0x5a is written at offset 8 MiB
    Then the 1 MiB at offset 8 MiB reads back as pattern 0x5a in a process working in another directory

  @spec:qcow2.data_file_raw
  Scenario: with data_file_raw=on the data file is the raw disk
    Given a 64 MiB qcow2 image created with "data_file=image.data,data_file_raw=on"
    When 1 MiB of pattern 0x5a is written at offset 8 MiB
    Then the image info reports format-specific "data-file-raw" true
    And the 1 MiB at offset 8 MiB reads back as pattern 0x5a
    And the oracle reads the same guest bytes

  @spec:qcow2.data_file_raw
  Scenario: data_file_raw needs a data file
    When a 64 MiB qcow2 image is created with "data_file_raw=on"
    Then creation fails naming "data_file_raw" and "data_file"
    And no image file is left behind

  Scenario: an external data file needs compat 1.1
    When a 64 MiB qcow2 image is created with "compat=0.10,data_file=image.data"
    Then creation fails naming "data_file" and "compat"
    And no image file is left behind
