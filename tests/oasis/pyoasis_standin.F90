!> C-callable wrappers of OASIS3-MCT's Fortran API for tests/oasis/pyoasis_standin.py,
!! a STAND-IN for pyoasis 5 (which is not available here). Built into a shared
!! library against an OASIS build compiled with -fPIC. Not shipped, not pyoasis.
module pyoasis_standin
   use, intrinsic :: iso_c_binding, only: c_int, c_char, c_double, c_null_char
   use mod_oasis
   implicit none
   private

contains

   function f_string(s) result(f)
      character(kind=c_char), intent(in) :: s(*)   !< NUL-terminated C string
      character(len=:), allocatable :: f
      integer :: n
      n = 0
      do while (s(n + 1) /= c_null_char)
         n = n + 1
      end do
      allocate (character(len=n) :: f)
      f = transfer(s(1:n), f)
   end function f_string

   subroutine sc_init_comp(name, comp_id, fcomm, ierr) bind(c, name='sc_init_comp')
      character(kind=c_char), intent(in) :: name(*)  !< component name
      integer(c_int), intent(out) :: comp_id, fcomm, ierr  !< component id, local communicator (Fortran handle), status
      call oasis_init_comp(comp_id, f_string(name), ierr)
      call oasis_get_localcomm(fcomm, ierr)
   end subroutine sc_init_comp

   subroutine sc_def_partition(offset, ni, nj, nx, gsize, part_id, ierr) bind(c, name='sc_def_partition')
      integer(c_int), value :: offset, ni, nj, nx    !< box partition: global offset, extents, global nx
      integer(c_int), value :: gsize                 !< global size (pyoasis global_size), -1: not given
      integer(c_int), intent(out) :: part_id, ierr   !< partition id, status
      if (gsize > 0) then
         call oasis_def_partition(part_id, [2, offset, ni, nj, nx], ierr, gsize)
      else
         call oasis_def_partition(part_id, [2, offset, ni, nj, nx], ierr)
      end if
   end subroutine sc_def_partition

   subroutine sc_def_var(name, part_id, nbundle, inout, var_id, ierr) bind(c, name='sc_def_var')
      character(kind=c_char), intent(in) :: name(*)  !< OASIS name
      integer(c_int), value :: part_id, nbundle, inout  !< partition, bundle size, OASIS_In or OASIS_Out
      integer(c_int), intent(out) :: var_id, ierr    !< variable id (-1: not in the namcouple), status
      call oasis_def_var(var_id, f_string(name), part_id, [1, nbundle], inout, [1, 1], OASIS_Real, ierr)
   end subroutine sc_def_var

   subroutine sc_enddef(ierr) bind(c, name='sc_enddef')
      integer(c_int), intent(out) :: ierr            !< status
      call oasis_enddef(ierr)
   end subroutine sc_enddef

   subroutine sc_put(var_id, t, npts, nb, fld, info) bind(c, name='sc_put')
      integer(c_int), value :: var_id, t, npts, nb   !< variable, time (s), points, bundle size
      real(c_double) :: fld(npts, nb)                !< values, Fortran order, bundle last (as oasis_put: no intent)
      integer(c_int), intent(out) :: info            !< OASIS info
      if (nb == 1) then
         call oasis_put(var_id, t, fld(:, 1), info)
      else
         call oasis_put(var_id, t, fld, info)
      end if
   end subroutine sc_put

   subroutine sc_get(var_id, t, npts, nb, fld, info) bind(c, name='sc_get')
      integer(c_int), value :: var_id, t, npts, nb   !< variable, time (s), points, bundle size
      real(c_double), intent(inout) :: fld(npts, nb) !< values, Fortran order, bundle last
      integer(c_int), intent(out) :: info            !< OASIS info
      if (nb == 1) then
         call oasis_get(var_id, t, fld(:, 1), info)
      else
         call oasis_get(var_id, t, fld, info)
      end if
   end subroutine sc_get

   subroutine sc_get_freq(var_id, inout, period, ierr) bind(c, name='sc_get_freq')
      integer(c_int), value :: var_id, inout         !< variable, OASIS_In or OASIS_Out
      integer(c_int), intent(out) :: period, ierr    !< coupling period (s), status
      integer :: freqs(1)
      call oasis_get_freqs(var_id, inout, 1, freqs, ierr)
      period = freqs(1)
   end subroutine sc_get_freq

   subroutine sc_terminate(ierr) bind(c, name='sc_terminate')
      integer(c_int), intent(out) :: ierr            !< status
      call oasis_terminate(ierr)
   end subroutine sc_terminate

end module pyoasis_standin
