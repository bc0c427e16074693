@format:qcow2 @op:info @op:read @requires:qemu-img
Feature: hostile qcow2 headers are refused without harm
  A qcow2 header whose fields cannot be right must be refused with an error naming the
  field, without a crash, a hang or any change to the file. (Field names and layout:
  the qcow2 specification, docs/interop/qcow2.txt in QEMU.)

  @spec:qcow2
  Scenario Outline: an image whose <defect> is refused
    Given a qcow2 image whose <defect>
    When the image is opened
    Then opening fails with an error naming "<field>"
    And the image file is unchanged

    Examples:
      | defect                                                       | field                   |
      | magic is wrong                                               | magic                   |
      | version is 1                                                 | version                 |
      | version is 4                                                 | version                 |
      | cluster_bits is 8                                            | cluster_bits            |
      | cluster_bits is 22                                           | cluster_bits            |
      | cluster_bits is 63                                           | cluster_bits            |
      | size is 2^62 bytes                                           | size                    |
      | crypt_method is 7                                            | crypt_method            |
      | l1_table_offset points past the end of the file              | l1_table_offset         |
      | l1_table_offset is not cluster aligned                       | l1_table_offset         |
      | l1_size needs more than the file holds                       | l1_size                 |
      | l1_size is 2^31                                              | l1_size                 |
      | refcount_table_offset points past the end of the file        | refcount_table_offset   |
      | refcount_table_clusters is 2^31                              | refcount_table_clusters |
      | refcount_order is 7                                          | refcount_order          |
      | nb_snapshots is 2^20 with snapshots past the end of the file | nb_snapshots            |
      | snapshot table entry claims 5000 bytes of extra data         | snapshots_offset        |
      | snapshots_offset is not cluster aligned                      | snapshots_offset        |
      | bitmap directory points outside the file                     | bitmap directory        |
      | incompatible_features has an unknown bit                     | incompatible_features   |
      | header_length is 48                                          | header_length           |
      | backing_file_offset points past the end of the file          | backing_file_offset     |
      | backing_file_size is 4096                                    | backing_file_size       |
      | backing file names the image itself                          | backing file name       |

  @spec:qcow2 @op:write
  Scenario Outline: a write to an image whose <defect> never lands in the header
    Given a qcow2 image whose <defect>
    When a write of 64 KiB of pattern 0xaa at offset 0 is attempted
    Then the write fails or is kept out of the header
    And the image header holds no guest data

    Examples:
      | defect                                    |
      | l1_table_offset overlaps the header       |
      | refcount_table_offset overlaps the header |
