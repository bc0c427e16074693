@format:bochs @op:read @spec:bochs @requires:bximage
Feature: hostile bochs images are refused without harm
  A header or catalog that cannot be right must be refused with an error naming the field,
  without a crash, a hang, an unbounded allocation or any change to the file. The reference
  reads at most 2^20 catalog entries (4 MiB), and only a catalog that lies inside the file;
  every allocated extent must lie inside the file too. The base image is a 1 MiB disk made
  by bximage with 64 KiB written at its start and its end.

  Scenario Outline: an image whose <defect> is refused
    Given a bochs image whose <defect>
    When the whole image is read
    Then the read is refused naming the damaged field
    And the image file is unchanged

    Examples:
      | defect                                        |
      | catalog entry points past the end of the file |
      | extent size is 0                              |
      | extent size is 2^31                           |
      | extent size is 3000                           |
      | catalog has 2^20+1 entries                    |
      | catalog has 2^31 entries                      |
      | catalog is too small for the disk             |
      | catalog ends past the end of the file         |
      | bitmap size is 0                              |
      | disk size is 2^62 bytes                       |
      | version is 3                                  |
      | file is 100 bytes long                        |
