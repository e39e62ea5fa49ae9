!> Example that doubles as the bridge's end-to-end test (the ocean side).
!!
!! Each rank owns a box of an nx x ny grid (px x py ranks, uneven splits
!! allowed), sends a 2-D and a 3-D analytic field every step and receives two
!! fields back, checking them bit for bit. The Python side is
!! tests/bridge/exchange_worker.py. Usage:
!!   mpirun -np N obr_exchange_ocean NX NY NLEV PX PY NSTEPS [MODE] : -np M python exchange_worker.py ...
!! MODE: normal | shape (declares nlev+1 for 'b3') | badid (puts an unknown id)
!!       | nan (puts a NaN at step 1) | waitget (Python never sends) | kinfo (errors through kinfo)
!!       | die (exits without a word right after the definitions)
!!       | nan3 (puts 'a2' with 3 NaN at step 1 and gets 'c2' at step 1, both with kinfo, printing
!!         kinfo and the message; the Python side, tests/bridge/wire_job.py, does the reverse)
!!       | drop=K[,K2] (subdomains K, K2 of the PX x PY layout, 0-based, i fastest, are land and removed:
!!         PX*PY - 1 or 2 ranks, rank r owning the r-th kept box; the partition declares its gaps)
!!       | dropsilent=K[,K2] (the same without declaring the gaps: end of definitions must stop)
!!       | wgap=WPX,WPY (the worker's rank 0 of its WPX x WPY layout leaves its last column to no rank and
!!         declares it: the ocean receives 0 there)
program exchange_ocean
   use obridge
   use, intrinsic :: iso_fortran_env, only: dp => real64, output_unit
   use mpi
   implicit none
   integer :: nx, ny, nlev, px, py, nsteps, comm, rank, nranks, ierr
   integer :: i0, j0, ni, nj, id_a2, id_b3, id_c2, id_d3, step, nbad, kinfo
   character(len=32) :: mode
   real(dp), allocatable :: a2(:, :), b3(:, :, :), c2(:, :), d3(:, :, :)
   integer :: dropped(2) = -1, ndropped = 0     ! drop= / dropsilent=: the removed subdomains
   integer :: wgap_i = -1, wgap_nj = 0          ! wgap=: the worker's unowned column and its rows

   call read_args()
   call obr_set_timeout(real(merge(3, 60, mode == 'waitget' .or. mode == 'kinfo'), dp))
   call obr_init('ocean', comm)
   call MPI_Comm_rank(comm, rank, ierr)
   call MPI_Comm_size(comm, nranks, ierr)
   if (nranks /= px*py - ndropped) call obr_abort('exchange_ocean: px*py less the dropped subdomains must '// &
                                                   'equal the number of ocean ranks')
   call my_box(kept(rank))
   call obr_def_partition(nx, ny, i0, j0, ni, nj, ld_gaps=index(mode, 'drop=') == 1)
   call obr_def_field('a2', OBR_OUT, 1, id_a2)
   call obr_def_field('b3', OBR_OUT, merge(nlev + 1, nlev, mode == 'shape'), id_b3)
   call obr_def_field('c2', OBR_IN, 1, id_c2)
   call obr_def_field('d3', OBR_IN, nlev, id_d3)
   call obr_enddef()
   if (mode == 'die') call exit(3)
   allocate (a2(ni, nj), b3(ni, nj, nlev), c2(ni, nj), d3(ni, nj, nlev))

   nbad = 0
   do step = 0, nsteps - 1
      call fill(a2, 1, step)
      call fill(b3, 2, step)
      if (mode == 'nan' .and. step == 1) a2(1, 1) = ieee_nan()
      if (mode == 'badid') call obr_put(id_d3 + 7, step, a2)
      if (mode == 'nan3' .and. step == 1) then
         a2(1, 1) = ieee_nan(); a2(2, 1) = ieee_nan(); a2(1, 2) = ieee_nan()
         call obr_put(id_a2, step, a2, kinfo)
         write (output_unit, '(a,i0,a)') 'put kinfo=', kinfo, ' message: '//trim(obr_last_error())
         call obr_put(id_b3, step, b3)
         call obr_get(id_c2, step, c2, kinfo)
         write (output_unit, '(a,i0,a)') 'get kinfo=', kinfo, ' message: '//trim(obr_last_error())
         call obr_get(id_d3, step, d3)
         nbad = nbad + mismatches3(d3, 4, step)
         cycle
      end if
      call obr_put(id_a2, step, a2)
      call obr_put(id_b3, step, b3)
      if (mode == 'kinfo') then
         call obr_get(id_c2, step, c2, kinfo)
         write (output_unit, '(a,i0,a)') 'kinfo=', kinfo, ' message: '//obr_last_error()
         exit
      end if
      call obr_get(id_c2, step, c2)
      call obr_get(id_d3, step, d3)
      nbad = nbad + mismatches(c2, 3, step) + mismatches3(d3, 4, step)
   end do
   if (nbad > 0) call obr_abort('exchange_ocean: '//itoa(nbad)//' received values differ from the analytic field')
   write (output_unit, '(a,i0,a,i0,a)') 'ocean rank ', rank, ': ', nsteps, ' steps exchanged bit-exactly'
   call obr_finalize()

contains

   subroutine read_args()
      character(len=32) :: arg
      integer :: k, vals(6)
      do k = 1, 6
         call get_command_argument(k, arg)
         read (arg, *) vals(k)
      end do
      nx = vals(1); ny = vals(2); nlev = vals(3); px = vals(4); py = vals(5); nsteps = vals(6)
      mode = 'normal'
      if (command_argument_count() >= 7) call get_command_argument(7, mode)
      if (index(mode, 'drop=') == 1 .or. index(mode, 'dropsilent=') == 1) then
         ndropped = count_items(mode(index(mode, '=') + 1:))
         read (mode(index(mode, '=') + 1:), *) dropped(:ndropped)
      else if (index(mode, 'wgap=') == 1) then
         read (mode(6:), *) vals(1:2)              ! the worker's layout: its rank 0 owns the first box
         call split(nx, vals(1), 0, k, wgap_i)
         call split(ny, vals(2), 0, k, wgap_nj)
         wgap_i = wgap_i - 1                       ! its last column, 0-based
      end if
   end subroutine read_args

   integer function count_items(list)
      character(len=*), intent(in) :: list       !< comma-separated integers
      integer :: k
      count_items = 1 + count([(list(k:k) == ',', k=1, len_trim(list))])
   end function count_items

   !> The subdomain (0-based, of the px x py layout) that ocean rank r owns: the r-th not dropped.
   integer function kept(r)
      integer, intent(in) :: r                   !< rank in the ocean communicator
      integer :: seen
      seen = -1
      do kept = 0, px*py - 1
         if (any(dropped(:ndropped) == kept)) cycle
         seen = seen + 1
         if (seen == r) return
      end do
   end function kept

   !> What the ocean expects at global point (ig, jg): the analytic value, or 0 where the worker owns nothing.
   pure real(dp) function expected(fid, step, k, jg, ig)
      integer, intent(in) :: fid, step, k, jg, ig  !< field id, step, level, global j and i (0-based)
      if (ig == wgap_i .and. jg < wgap_nj) then
         expected = 0._dp
      else
         expected = analytic(fid, step, k, jg, ig)
      end if
   end function expected

   !> Block decomposition, rank order i fastest, first n mod p pieces one longer (as bridge.partition.decompose).
   subroutine my_box(r)
      integer, intent(in) :: r                   !< rank in the ocean communicator
      call split(nx, px, mod(r, px), i0, ni)
      call split(ny, py, r/px, j0, nj)
   end subroutine my_box

   subroutine split(n, p, k, off, ext)
      integer, intent(in) :: n, p, k             !< points, parts, this part
      integer, intent(out) :: off, ext           !< its 0-based offset and extent
      ext = n/p + merge(1, 0, k < mod(n, p))
      off = k*(n/p) + min(k, mod(n, p))
   end subroutine split

   !> The analytic value, exact in double precision (as exchange_worker.analytic).
   pure real(dp) function analytic(fid, step, k, jg, ig)
      integer, intent(in) :: fid, step, k, jg, ig  !< field id, step, level, global j and i (0-based)
      analytic = (-1._dp)**fid*(real(fid, dp)*2._dp**40 + real(step, dp)*2._dp**30 + real(k, dp)*2._dp**22 &
                                + real(jg, dp)*2._dp**11 + real(ig, dp)) + 0.25_dp
   end function analytic

   subroutine fill(a, fid, step)
      real(dp), intent(out) :: a(..)             !< 2-D or 3-D field to fill
      integer, intent(in) :: fid, step           !< field id and step
      integer :: i, j, k
      select rank (a)
      rank (2)
         do j = 1, nj; do i = 1, ni
            a(i, j) = analytic(fid, step, 0, j0 + j - 1, i0 + i - 1)
         end do; end do
      rank (3)
         do k = 1, nlev; do j = 1, nj; do i = 1, ni
            a(i, j, k) = analytic(fid, step, k - 1, j0 + j - 1, i0 + i - 1)
         end do; end do; end do
      end select
   end subroutine fill

   integer function mismatches(a, fid, step)
      real(dp), intent(in) :: a(:, :)            !< received 2-D field
      integer, intent(in) :: fid, step           !< its field id and step
      integer :: i, j
      mismatches = 0
      do j = 1, nj; do i = 1, ni
         if (a(i, j) /= expected(fid, step, 0, j0 + j - 1, i0 + i - 1)) mismatches = mismatches + 1
      end do; end do
   end function mismatches

   integer function mismatches3(a, fid, step)
      real(dp), intent(in) :: a(:, :, :)         !< received 3-D field
      integer, intent(in) :: fid, step           !< its field id and step
      integer :: i, j, k
      mismatches3 = 0
      do k = 1, nlev; do j = 1, nj; do i = 1, ni
         if (a(i, j, k) /= expected(fid, step, k - 1, j0 + j - 1, i0 + i - 1)) mismatches3 = mismatches3 + 1
      end do; end do; end do
   end function mismatches3

   real(dp) function ieee_nan()
      use, intrinsic :: ieee_arithmetic, only: ieee_value, ieee_quiet_nan
      ieee_nan = ieee_value(1._dp, ieee_quiet_nan)
   end function ieee_nan

   function itoa(i) result(s)
      integer, intent(in) :: i                   !< integer to print
      character(len=16) :: s
      write (s, '(i0)') i
   end function itoa

end program exchange_ocean
