!> Shared by the OASIS stand-ins of tests/oasis: the analytic test fields of
!! bridge/fortran/examples/exchange_ocean.F90 (exact in double precision), box
!! splits, and checks. Field ids: 1 = a2, 2 = b3 (ocean -> worker), 3 = c2, 4 = d3 (worker -> ocean).
module standin_fields
   use, intrinsic :: iso_fortran_env, only: dp => real64
   implicit none
   private
   public :: dp, analytic, fill, mismatches, split, int_args

contains

   !> The analytic value (as exchange_ocean.F90 and tests/bridge/exchange_worker.py).
   pure real(dp) function analytic(fid, step, k, jg, ig)
      integer, intent(in) :: fid, step, k, jg, ig  !< field id, step, level, global j and i (0-based)
      analytic = (-1._dp)**fid*(real(fid, dp)*2._dp**40 + real(step, dp)*2._dp**30 + real(k, dp)*2._dp**22 &
                                + real(jg, dp)*2._dp**11 + real(ig, dp)) + 0.25_dp
   end function analytic

   !> Fill a(ni, nj, nlev) of the box at (i0, j0) with field fid at a step.
   subroutine fill(a, fid, step, i0, j0)
      real(dp), intent(out) :: a(:, :, :)        !< the box's values
      integer, intent(in) :: fid, step, i0, j0   !< field id, step, 0-based offset of the box
      integer :: i, j, k
      do k = 1, size(a, 3); do j = 1, size(a, 2); do i = 1, size(a, 1)
         a(i, j, k) = analytic(fid, step, k - 1, j0 + j - 1, i0 + i - 1)
      end do; end do; end do
   end subroutine fill

   !> Number of values of a(ni, nj, nlev) that differ from field fid at a step.
   integer function mismatches(a, fid, step, i0, j0)
      real(dp), intent(in) :: a(:, :, :)         !< received values
      integer, intent(in) :: fid, step, i0, j0   !< field id, step, 0-based offset of the box
      real(dp) :: want(size(a, 1), size(a, 2), size(a, 3))
      call fill(want, fid, step, i0, j0)
      mismatches = count(a /= want)
   end function mismatches

   !> Part k of n points split in p pieces, the first n mod p one longer (as bridge.partition.split_1d).
   subroutine split(n, p, k, off, ext)
      integer, intent(in) :: n, p, k             !< points, parts, this part (0-based)
      integer, intent(out) :: off, ext           !< its 0-based offset and extent
      ext = n/p + merge(1, 0, k < mod(n, p))
      off = k*(n/p) + min(k, mod(n, p))
   end subroutine split

   !> The first n command-line arguments, read as integers.
   function int_args(n) result(v)
      integer, intent(in) :: n                   !< how many
      integer :: v(n), k
      character(len=32) :: arg
      do k = 1, n
         call get_command_argument(k, arg)
         read (arg, *) v(k)
      end do
   end function int_args

end module standin_fields
