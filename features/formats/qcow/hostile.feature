@format:qcow @op:info @op:read @requires:qemu-img @spec:qcow
Feature: hostile qcow images are refused without harm
  A qcow header field that cannot be right must be refused with an error naming it,
  without a crash, a hang, an unbounded allocation or any change to the file.
  (Field names: struct QCowHeader in QEMU's block/qcow.c.)

  Scenario Outline: an image whose <defect> is refused
    Given a qcow image whose <defect>
    When the image is opened
    Then opening fails with an error naming the damaged field
    And the image file is unchanged

    Examples:
      | defect                              |
      | magic is wrong                      |
      | version is 3                        |
      | size is 0                           |
      | size is 2^64-1 bytes                |
      | size needs a 4 GiB L1 table         |
      | cluster_bits is 20                  |
      | l2_bits is 20                       |
      | crypt_method is 7                   |
      | l1_table_offset points past the end of the file |
      | L1 entry points past the end of the file        |
      | L2 entry points past the end of the file        |
      | backing_file_size is 5000           |
      | backing file names the image itself |
